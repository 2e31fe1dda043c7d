//! Running in a node image with the host's root mounted at `/host` (`kubectl debug node/...`,
//! `docker run -v /:/host`): the runtime sockets are found under it.
//!
//! The resolvers already honour `DOCKER_HOST`, `CONTAINER_HOST`, `CONTAINERD_ADDRESS` and
//! `CONTAINER_RUNTIME_ENDPOINT` (the CRI); when one is unset and its runtime's socket is
//! missing from our own root but present under the host's, it is pointed there, once, before
//! any thread exists.

use std::path::{Path, PathBuf};

/// Where the host's root is expected: `$NSDEBUG_HOST_ROOT` (empty: never), else `/host`.
pub fn host_root() -> Option<PathBuf> {
    let root = match std::env::var_os("NSDEBUG_HOST_ROOT") {
        Some(value) if value.is_empty() => return None,
        Some(value) => PathBuf::from(value),
        None => PathBuf::from("/host"),
    };
    root.is_dir().then_some(root)
}

fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|meta| meta.file_type().is_socket())
}

fn socket_in(host_root: Option<&Path>, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(own) = candidates
        .iter()
        .map(PathBuf::from)
        .find(|path| is_socket(path))
    {
        return Some(own);
    }
    let root = host_root?;
    candidates
        .iter()
        .filter_map(|path| under_root(root, Path::new(path)))
        .find(|path| is_socket(path))
}

/// `path` of the host as seen under `root`: symbolic links are followed as the host would
/// follow them, an absolute target staying under `root` (the host's `/var/run` is a link to
/// `/run`, which from here is our own /run). `None` when a link cannot be read or loops.
fn under_root(root: &Path, path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let mut pending: Vec<PathBuf> = path
        .components()
        .rev()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.components().next() {
            None | Some(Component::RootDir | Component::CurDir | Component::Prefix(_)) => continue,
            Some(Component::ParentDir) => {
                resolved.pop();
                continue;
            }
            Some(Component::Normal(_)) => {}
        }
        let here = root.join(&resolved).join(&part);
        match std::fs::symlink_metadata(&here) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return None;
                }
                let target = std::fs::read_link(&here).ok()?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                pending.extend(
                    target
                        .components()
                        .rev()
                        .map(|c| PathBuf::from(c.as_os_str())),
                );
            }
            _ => resolved.push(&part),
        }
    }
    Some(root.join(resolved))
}

/// The environment the resolvers read, and each runtime's usual sockets.
const RUNTIMES: [(&str, &str, &[&str]); 4] = [
    (
        "DOCKER_HOST",
        "unix://",
        &["/var/run/docker.sock", "/run/docker.sock"],
    ),
    ("CONTAINER_HOST", "unix://", &["/run/podman/podman.sock"]),
    (
        "CONTAINERD_ADDRESS",
        "",
        &[
            "/run/containerd/containerd.sock",
            "/var/run/docker/containerd/containerd.sock",
            "/run/k3s/containerd/containerd.sock",
        ],
    ),
    (
        "CONTAINER_RUNTIME_ENDPOINT",
        "unix://",
        &[
            "/run/containerd/containerd.sock",
            "/run/k3s/containerd/containerd.sock",
            "/run/crio/crio.sock",
            "/var/run/crio/crio.sock",
        ],
    ),
];

/// The variables to set so that the resolvers find the sockets under `host_root`: only those
/// unset, and only for runtimes whose socket is not in our own root.
fn settings(host_root: &Path, is_set: impl Fn(&str) -> bool) -> Vec<(&'static str, String)> {
    RUNTIMES
        .iter()
        .filter(|(variable, _, _)| !is_set(variable))
        .filter(|(_, _, candidates)| !candidates.iter().any(|path| is_socket(Path::new(path))))
        .filter_map(|(variable, scheme, candidates)| {
            let found = socket_in(Some(host_root), candidates)?;
            Some((*variable, format!("{scheme}{}", found.display())))
        })
        .collect()
}

/// Points the resolvers at the runtime sockets under the host's root, if there is one.
/// Must run before any thread exists (it sets environment variables).
pub fn use_host_sockets() {
    let Some(root) = host_root() else { return };
    for (variable, value) in settings(&root, |name| std::env::var_os(name).is_some()) {
        std::env::set_var(variable, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_under_the_host_root_are_used_only_where_nothing_is_set_or_local() {
        let root = std::env::temp_dir().join(format!("nsdebug-hostroot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        // As on Debian: /var/run is a link to /run, absolute, so it must stay under the root.
        std::fs::create_dir_all(root.join("run/docker/containerd")).unwrap();
        std::fs::create_dir_all(root.join("var")).unwrap();
        std::os::unix::fs::symlink("/run", root.join("var/run")).unwrap();
        let _docker = std::os::unix::net::UnixListener::bind(root.join("run/docker.sock")).unwrap();
        let _containerd = std::os::unix::net::UnixListener::bind(
            root.join("run/docker/containerd/containerd.sock"),
        )
        .unwrap();
        std::fs::write(root.join("run/not-a-socket.sock"), "").unwrap();

        let local_docker = is_socket(Path::new("/var/run/docker.sock"));
        let local_containerd = [
            "/run/containerd/containerd.sock",
            "/var/run/docker/containerd/containerd.sock",
        ]
        .iter()
        .any(|path| is_socket(Path::new(path)));
        let set = settings(&root, |_| false);
        let docker = set.iter().find(|(variable, _)| *variable == "DOCKER_HOST");
        let containerd = set
            .iter()
            .find(|(variable, _)| *variable == "CONTAINERD_ADDRESS");
        if !local_docker {
            assert_eq!(
                docker.map(|(_, value)| value.clone()),
                Some(format!("unix://{}/run/docker.sock", root.display()))
            );
        } else {
            assert!(docker.is_none(), "our own socket wins: {set:?}");
        }
        if !local_containerd {
            let expected = format!("{}/run/docker/containerd/containerd.sock", root.display());
            assert_eq!(containerd.map(|(_, value)| value.clone()), Some(expected));
        }
        assert!(
            set.iter()
                .all(|(variable, _)| *variable != "CONTAINER_HOST"),
            "no podman socket: {set:?}"
        );
        // What the user set is never replaced.
        assert!(settings(&root, |_| true).is_empty());
        assert_eq!(
            socket_in(Some(&root), &["/var/run/not-a-socket.sock"]),
            None
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn links_resolve_inside_the_root() {
        let root =
            std::env::temp_dir().join(format!("nsdebug-hostroot-links-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("run/a")).unwrap();
        std::fs::create_dir_all(root.join("var")).unwrap();
        std::os::unix::fs::symlink("/run", root.join("var/run")).unwrap();
        std::os::unix::fs::symlink("../run/a", root.join("var/rel")).unwrap();
        std::os::unix::fs::symlink("/loop", root.join("loop")).unwrap();
        assert_eq!(
            under_root(&root, Path::new("/var/run/x.sock")),
            Some(root.join("run/x.sock"))
        );
        assert_eq!(
            under_root(&root, Path::new("/var/rel/x.sock")),
            Some(root.join("run/a/x.sock"))
        );
        assert_eq!(
            under_root(&root, Path::new("/../../etc/x")),
            Some(root.join("etc/x"))
        );
        assert_eq!(under_root(&root, Path::new("/loop/x")), None);
        let _ = std::fs::remove_dir_all(&root);
    }
}
