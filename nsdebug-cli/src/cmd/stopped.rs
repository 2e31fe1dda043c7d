//! `nsdebug debug` on a container that is not running: the host's tools with the container's
//! files at `$CTR_ROOT`, taken from the runtime's own storage (the overlay layers Docker and
//! Podman report through their API) without starting the container or changing its state.
//!
//! Every layer directory is opened beneath the runtime's storage root (`openat2`
//! `RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS`): a path outside it, or through a link, is refused.
//! The layers, the container's own on top, are all *lower* layers of an overlay made with the
//! new mount API (`fsopen`/`fsconfig`/`fsmount`): no upper or work directory, so nothing can be
//! written to the runtime's storage, and the mount is read-only, `nosymfollow`, `nosuid`,
//! `nodev` and `noexec` (the container's programs are data here, not host programs). The
//! overlay is mounted only in a private mount namespace of the session's process, on a tmpfs
//! of its own at [`TOOLBOX_SCRATCH`](super::enter::TOOLBOX_SCRATCH): nothing remains when the
//! session ends.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use rustix::fs::{self, Mode, OFlags, ResolveFlags};
use rustix::mount::{
    self, FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MountPropagationFlags,
    MoveMountFlags,
};

use nsdebug_resolve::{docker::Engine, ContainerInfo, API_TIMEOUT};

/// The layers of a stopped container, opened.
pub struct Layers {
    /// The runtime's storage root, e.g. `/var/lib/docker/overlay2`.
    pub root: String,
    /// Topmost first: the container's own layer, then the image's.
    pub dirs: Vec<OwnedFd>,
}

/// Finds and opens the layers of a stopped Docker or Podman container, or of a pod's container
/// on containerd (its snapshot).
pub async fn layers(info: &ContainerInfo) -> anyhow::Result<Layers> {
    let engine = match (info.runtime, &info.cri) {
        ("docker", _) => Engine::docker(),
        ("podman", _) => Engine::podman(),
        ("cri", Some(cri)) => return snapshot_layers(info, &cri.endpoint).await,
        (other, _) => bail!(
            "the files of a stopped container are read from Docker's, Podman's or a pod's \
             containerd storage; {other} is not supported"
        ),
    };
    let client = engine.connect().map_err(|e| anyhow!(e))?;
    let inspected = tokio::time::timeout(API_TIMEOUT, client.inspect_container(&info.id, None))
        .await
        .map_err(|_| anyhow!("no answer within {API_TIMEOUT:?}"))??;
    let system = tokio::time::timeout(API_TIMEOUT, client.info())
        .await
        .map_err(|_| anyhow!("{}: no answer within {API_TIMEOUT:?}", info.runtime))??;
    let driver = inspected.graph_driver.unwrap_or_default();
    if driver.name != "overlay2" && driver.name != "overlay" {
        bail!(
            "its storage driver is {:?}; only overlay layers can be shown",
            driver.name
        );
    }
    let base = system
        .docker_root_dir
        .filter(|d| d.starts_with('/'))
        .ok_or_else(|| anyhow!("{}: the engine names no storage root", info.runtime))?;
    let root = format!("{}/{}", base.trim_end_matches('/'), driver.name);
    let mut paths: Vec<&str> = Vec::new();
    if let Some(upper) = driver.data.get("UpperDir") {
        paths.push(upper);
    }
    if let Some(lower) = driver.data.get("LowerDir") {
        paths.extend(lower.split(':').filter(|p| !p.is_empty()));
    }
    if paths.is_empty() {
        bail!("the engine reports no layers");
    }
    let dirs = open_beneath(&root, &paths)?;
    Ok(Layers { root, dirs })
}

/// The layers of a CRI container's snapshot, through containerd's own API on the CRI socket
/// (namespace `k8s.io`): the container's snapshotter and key, then the snapshot's mounts. The
/// storage root is the snapshotter's `snapshots` directory
/// (`.../io.containerd.snapshotter.v1.overlayfs/snapshots`); every layer is `ROOT/N/fs`.
async fn snapshot_layers(info: &ContainerInfo, endpoint: &str) -> anyhow::Result<Layers> {
    use nsdebug_cri::containerd::services::containers::v1::{
        containers_client::ContainersClient, GetContainerRequest,
    };
    use nsdebug_cri::containerd::services::snapshots::v1::{
        snapshots_client::SnapshotsClient, MountsRequest,
    };
    fn in_k8s<T>(message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            nsdebug_cri::CONTAINERD_NAMESPACE_HEADER,
            tonic::metadata::MetadataValue::from_static("k8s.io"),
        );
        request
    }
    let channel = tokio::time::timeout(API_TIMEOUT, nsdebug_cri::connect(endpoint))
        .await
        .map_err(|_| anyhow!("{endpoint}: no answer within {API_TIMEOUT:?}"))??;
    let mut containers = ContainersClient::new(channel.clone());
    let asked = containers.get(in_k8s(GetContainerRequest {
        id: info.id.clone(),
    }));
    let container = tokio::time::timeout(API_TIMEOUT, asked)
        .await
        .map_err(|_| anyhow!("{endpoint}: no answer within {API_TIMEOUT:?}"))?
        .map_err(|status| {
            anyhow!(
                "its files are read from containerd's snapshots, and {endpoint} does \
                 not serve containerd's API ({})",
                status.message()
            )
        })?
        .into_inner()
        .container
        .ok_or_else(|| anyhow!("containerd does not know it"))?;
    let mut snapshots = SnapshotsClient::new(channel);
    let asked = snapshots.mounts(in_k8s(MountsRequest {
        snapshotter: container.snapshotter.clone(),
        key: container.snapshot_key.clone(),
    }));
    let mounts = tokio::time::timeout(API_TIMEOUT, asked)
        .await
        .map_err(|_| anyhow!("{endpoint}: no answer within {API_TIMEOUT:?}"))?
        .map_err(|status| anyhow!("its snapshot: {}", status.message()))?
        .into_inner()
        .mounts;
    let paths = match mounts.as_slice() {
        [mount] if mount.r#type == "overlay" => overlay_layers(&mount.options),
        [mount] if mount.r#type == "bind" => vec![mount.source.clone()],
        _ => bail!(
            "its snapshotter ({}) gives no overlay layers",
            container.snapshotter
        ),
    };
    let root = snapshots_root(&paths)
        .ok_or_else(|| anyhow!("its layers are not in one snapshotter's directory"))?;
    let borrowed: Vec<&str> = paths.iter().map(String::as_str).collect();
    let dirs = open_beneath(&root, &borrowed)?;
    Ok(Layers { root, dirs })
}

/// The layer directories of overlay mount options, topmost first: `upperdir`, then `lowerdir`'s.
fn overlay_layers(options: &[String]) -> Vec<String> {
    let upper = options.iter().filter_map(|o| o.strip_prefix("upperdir="));
    let lower = options
        .iter()
        .filter_map(|o| o.strip_prefix("lowerdir="))
        .flat_map(|l| l.split(':'));
    upper
        .chain(lower)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The snapshotter directory (`.../io.containerd.snapshotter.v1.NAME/snapshots`) every one of
/// `paths` (`ROOT/N/fs`) is in, if they are all in one.
fn snapshots_root(paths: &[String]) -> Option<String> {
    let roots: Vec<&str> = paths
        .iter()
        .map(|path| {
            let (root, id) = path.strip_suffix("/fs")?.rsplit_once('/')?;
            let parent = root.strip_suffix("/snapshots")?;
            let name = parent.rsplit('/').next()?;
            let plain = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
            (plain && name.starts_with("io.containerd.snapshotter.v1.")).then_some(root)
        })
        .collect::<Option<_>>()?;
    let first = *roots.first()?;
    roots.iter().all(|r| *r == first).then(|| first.to_owned())
}

/// Opens each of `paths` (`O_PATH` directories) beneath `root`, refusing one outside it, with
/// a `..`, or through a symbolic link.
fn open_beneath(root: &str, paths: &[&str]) -> anyhow::Result<Vec<OwnedFd>> {
    let dir = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let root_fd = fs::open(root, dir, Mode::empty()).with_context(|| format!("opening {root}"))?;
    paths
        .iter()
        .map(|path| {
            let relative = path
                .strip_prefix(root)
                .and_then(|rest| rest.strip_prefix('/'))
                .filter(|rest| !rest.is_empty())
                .ok_or_else(|| anyhow!("layer {path:?} is not beneath {root}: refused"))?;
            let resolve = ResolveFlags::BENEATH
                | ResolveFlags::NO_SYMLINKS
                | ResolveFlags::NO_MAGICLINKS
                | ResolveFlags::NO_XDEV;
            fs::openat2(&root_fd, relative, dir, Mode::empty(), resolve).with_context(|| {
                format!("layer {path:?}: not a directory beneath {root} without links")
            })
        })
        .collect()
}

/// The read-only overlay of the layers, made in our mount namespace (where the layer fds
/// are) as a detached mount that the child attaches in its own.
struct Mounting {
    scratch: CString,
    at: CString,
    overlay: OwnedFd,
}

/// A detached, read-only overlay of `layers` (fsconfig key and value pairs), `nosymfollow`,
/// `nosuid`, `nodev`, `noexec`.
fn overlay(layers: &[(&str, &str)]) -> anyhow::Result<OwnedFd> {
    let options = layers.iter().copied().chain([
        // The container's layer may hold redirects it made: followed, they could show
        // another directory of the layers than the one named.
        ("redirect_dir", "nofollow"),
        ("metacopy", "off"),
    ]);
    let fs = mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).context("fsopen(overlay)")?;
    for (key, value) in options {
        mount::fsconfig_set_string(&fs, key, value)
            .with_context(|| format!("overlay option {key}"))?;
    }
    mount::fsconfig_create(&fs).context("creating the overlay of its layers")?;
    let attributes = MountAttrFlags::MOUNT_ATTR_RDONLY
        | MountAttrFlags::MOUNT_ATTR_NOSYMFOLLOW
        | MountAttrFlags::MOUNT_ATTR_NOSUID
        | MountAttrFlags::MOUNT_ATTR_NODEV
        | MountAttrFlags::MOUNT_ATTR_NOEXEC;
    mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attributes).context("fsmount of the overlay")
}

impl Mounting {
    fn new(layers: &Layers, scratch: &str) -> anyhow::Result<Mounting> {
        // The layers by their open fds: the directories checked are the ones mounted.
        let dirs: Vec<String> = layers
            .dirs
            .iter()
            .map(|fd| format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .collect();
        // One layer per `lowerdir+` (Linux >= 6.8): fsconfig takes at most 256 bytes a value,
        // which a joined `lowerdir` of some fifteen layers exceeds. Older kernels get that.
        let one_by_one: Vec<(&str, &str)> =
            dirs.iter().map(|d| ("lowerdir+", d.as_str())).collect();
        let joined = dirs.join(":");
        let overlay = match overlay(&one_by_one) {
            Ok(overlay) => overlay,
            Err(error) => overlay(&[("lowerdir", joined.as_str())])
                .map_err(|older| anyhow!("{error:#}; as one lowerdir: {older:#}"))?,
        };
        Ok(Mounting {
            scratch: CString::new(scratch)?,
            at: CString::new(format!("{scratch}/ctr"))?,
            overlay,
        })
    }

    /// In the child: a private mount namespace, a tmpfs on the scratch directory, the overlay
    /// attached in it. Only system calls: every path is a `CStr` prepared before fork, which
    /// rustix and nix pass to the kernel as they are (no allocation after fork).
    fn mount(&self) -> std::io::Result<()> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
        mount::mount_change(
            c"/",
            MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
        )?;
        mount::mount(
            c"tmpfs",
            self.scratch.as_c_str(),
            c"tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV,
            c"mode=0755,size=64k",
        )?;
        fs::mkdir(self.at.as_c_str(), Mode::from_raw_mode(0o755))?;
        mount::move_mount(
            &self.overlay,
            c"",
            fs::CWD,
            self.at.as_c_str(),
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )?;
        Ok(())
    }
}

/// The runtimes' words for a container that is not running and will not start by itself
/// (Docker, Podman, the CRI).
const STOPPED: [&str; 5] = ["exited", "created", "dead", "stopped", "configured"];

/// `debug` of a TARGET that could not be pinned (`error`): when the runtime has it and it is
/// not running, the host's `command` (default `$SHELL`, else `/bin/sh`) with its files;
/// otherwise the error stands.
pub fn when_stopped(
    target: &str,
    command: &[OsString],
    options: &nsdebug_resolve::ResolveOptions,
    error: nsdebug_resolve::Error,
) -> Result<ExitCode, crate::cli::Failure> {
    let info = match crate::cli::block_on(super::record(target, options))? {
        // Stopped for good, by the runtime's word: a paused or restarting container's files
        // are in use, and its error (unpause first...) stands.
        Ok(info) if info.pid.is_none() && STOPPED.contains(&info.status.as_str()) => info,
        _ => return Err(error.into()),
    };
    let (program, args) = match command.split_first() {
        Some((program, args)) => (program.clone(), args),
        None => (
            std::env::var_os("SHELL")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "/bin/sh".into()),
            &[][..],
        ),
    };
    use std::os::unix::fs::DirBuilderExt;
    let scratch = super::enter::TOOLBOX_SCRATCH;
    match std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(scratch)
    {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(anyhow::Error::new(e)
                .context(format!("creating {scratch}"))
                .into());
        }
        _ => {}
    }
    Ok(debug(&info, program, args, scratch)?)
}

/// Runs `program` (the host's) with the stopped container's files at `$CTR_ROOT`, and passes
/// its exit status on.
pub fn debug(
    info: &ContainerInfo,
    program: OsString,
    args: &[OsString],
    scratch: &str,
) -> anyhow::Result<ExitCode> {
    let what = info.describe();
    let layers = crate::cli::block_on(layers(info))?.with_context(|| what.clone())?;
    let mounting = Mounting::new(&layers, scratch)?;
    crate::cli::notice(format_args!(
        "{what} is {}: its files (read-only, from {}) at $CTR_ROOT={scratch}/ctr; nothing of it runs",
        super::shown(&info.status),
        layers.root
    ));
    let mut command = std::process::Command::new(&program);
    command
        .args(args)
        .env("CTR_ROOT", format!("{scratch}/ctr"))
        .env(
            "PS1",
            format!("[nsdebug {} (stopped)] \\w \\$ ", super::shown(&info.name)),
        );
    // SAFETY: the closure makes only system calls on memory prepared before fork.
    unsafe {
        command.pre_exec(move || {
            // The program gets the terminal's signals as any program does (nsdebug ignores
            // them below while it waits, and ignored dispositions survive exec).
            crate::waiting::default_in_child()?;
            mounting.mount()
        });
    }
    // Like system(3): the terminal's ^C and ^\ are the program's to act on, not nsdebug's.
    let ignored = crate::waiting::TerminalSignalsIgnored::new();
    let status = command.status();
    drop(ignored);
    let status = status.with_context(|| {
        format!(
            "{what}: starting {} with its files",
            program.to_string_lossy()
        )
    })?;
    drop(layers);
    Ok(ExitCode::from(match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128u8.wrapping_add(signal as u8),
        (None, None) => crate::cli::EXIT_NSDEBUG_FAILED,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_snapshot_layers_are_named_by_their_snapshotter_directory() {
        let root = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots";
        let options = vec![
            "index=off".to_owned(),
            format!("workdir={root}/9/work"),
            format!("upperdir={root}/9/fs"),
            format!("lowerdir={root}/2/fs:{root}/1/fs"),
        ];
        let layers = overlay_layers(&options);
        assert_eq!(
            layers,
            vec![
                format!("{root}/9/fs"),
                format!("{root}/2/fs"),
                format!("{root}/1/fs")
            ]
        );
        assert_eq!(snapshots_root(&layers).as_deref(), Some(root));
        // Anywhere else, or two roots: no root.
        assert_eq!(snapshots_root(&["/etc/fs".to_owned()]), None);
        assert_eq!(
            snapshots_root(&[format!("{root}/9/fs"), "/tmp/snapshots/1/fs".to_owned()]),
            None
        );
        assert_eq!(snapshots_root(&[format!("{root}/../../x/fs")]), None);
    }

    #[test]
    fn layers_outside_the_root_or_through_links_are_refused() {
        let base = std::env::temp_dir().join(format!("nsdebug-layers-{}", std::process::id()));
        let root = base.join("overlay2");
        std::fs::create_dir_all(root.join("a/diff")).unwrap();
        std::fs::create_dir_all(base.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(base.join("elsewhere"), root.join("link")).unwrap();
        let root_s = root.to_str().unwrap();
        let inside = format!("{root_s}/a/diff");
        assert!(open_beneath(root_s, &[inside.as_str()]).is_ok());
        let outside = base.join("elsewhere").display().to_string();
        let dotdot = format!("{root_s}/../elsewhere");
        let linked = format!("{root_s}/link");
        let prefix_only = format!("{root_s}-evil/a");
        for bad in [&outside, &dotdot, &linked, &prefix_only] {
            assert!(
                open_beneath(root_s, &[bad.as_str()]).is_err(),
                "{bad} was accepted"
            );
        }
        let _ = std::fs::remove_dir_all(&base);
    }
}
