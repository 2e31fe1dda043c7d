//! Taking a container's veth peers down, and bringing back exactly what was taken down.
//!
//! A container cannot take the host-side end of its own veth down, so cutting it off the
//! network (a drill, a quarantine) is done from the caller's side. What is taken down is
//! recorded, one file per network namespace, in a directory the caller names (`nsdebug`
//! uses `/run/nsdebug`), so that bringing it back touches only what was taken down: a peer
//! that was already down stays down, a parent device (macvlan, vlan) is never touched.
//!
//! Record files are named `veth-down-DEV-INO` after the namespace's inode, hold one line per
//! peer (`PLACE\tIFINDEX\tNAME`, PLACE being [`Place::name`]) and are replaced atomically.
//! The directory is opened once, refused when it is a symbolic link or anyone but the caller
//! could write to it, and its files are opened by name beneath it, never through a link.
//!
//! ```no_run
//! use nsdebug_net::down::DownRecords;
//! use nsdebug_net::peer::inspect;
//! use nsenter_core::{Pid, Target};
//! let target = Target::open(Pid::try_from(1234)?)?;
//! let records = DownRecords::open("/run/my-tool".as_ref())?;
//! let done = records.take_down(&target, &mut inspect(&target)?, None)?;
//! // ... later, even from another process:
//! let undone = records.bring_up(&target, &mut inspect(&target)?, None)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{self, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{self, UnlinkatFlags};
use nsenter_core::{Namespace, Target};

use crate::error::{Error, Result};
use crate::link::{Link, RouteSocket};
use crate::peer::{Inspection, Interface, OtherEnd, Place};

/// Link kinds whose other end is a parent device rather than a peer: taking the parent down
/// takes down everything on it, the host's own traffic included.
const PARENTED_KINDS: [&str; 5] = ["macvlan", "macvtap", "ipvlan", "ipvtap", "vlan"];

/// Whether `link`'s other end is its parent device (macvlan, ipvlan, vlan...), not a peer.
pub fn is_parented(link: &Link) -> bool {
    link.kind
        .as_deref()
        .is_some_and(|k| PARENTED_KINDS.contains(&k))
}

/// One peer a record says was taken down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRecord {
    /// Its namespace, as [`Place::name`] names it (`host`, `inside`, `ip netns blue`...).
    pub place: String,
    /// Its ifindex there.
    pub index: u32,
    /// Its name when it was taken down.
    pub name: String,
}

impl PeerRecord {
    /// The record of `link`, found at `place`.
    pub fn of(link: &Link, place: &Place) -> PeerRecord {
        PeerRecord {
            place: place.name(),
            index: link.index,
            name: link.name.clone(),
        }
    }

    fn line(&self) -> String {
        format!("{}\t{}\t{}", self.place, self.index, self.name)
    }

    /// From the right: an interface name has no white space, an `ip netns` name may.
    fn parse(line: &str) -> Option<PeerRecord> {
        let mut fields = line.rsplitn(3, '\t');
        let name = fields.next()?.to_owned();
        let index = fields.next()?.parse().ok()?;
        Some(PeerRecord {
            place: fields.next()?.to_owned(),
            index,
            name,
        })
    }
}

/// One peer taken down or brought up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The peer.
    pub peer: PeerRecord,
    /// The container's interface it is the peer of; `None` for a host peer brought back by
    /// its recorded ifindex because no interface of the container leads to it any more.
    pub interface: Option<String>,
}

/// What [`DownRecords::take_down`] or [`DownRecords::bring_up`] did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// How many peers the namespace's record held before.
    pub recorded_before: usize,
    /// The peers changed.
    pub changed: Vec<Change>,
    /// Recorded host peers that are gone or renamed: not ours any more, their record dropped.
    pub gone: Vec<PeerRecord>,
}

/// The directory of records of what was taken down.
#[derive(Debug)]
pub struct DownRecords {
    dir: OwnedFd,
    path: PathBuf,
}

impl DownRecords {
    /// Opens the directory at `path`, created 0700 when missing; refused when it is a
    /// symbolic link or anyone but the caller can write to it. Records of network
    /// namespaces that no longer exist are removed (nothing is left to bring up, and a new
    /// namespace may get the same inode).
    pub fn open(path: &Path) -> Result<DownRecords> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        match std::fs::DirBuilder::new().mode(0o700).create(path) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(record_error(format!("creating {}", path.display()), e));
            }
            _ => {}
        }
        let records = DownRecords::open_existing(path).map_err(|e| {
            record_error(format!("{}: not a directory of its own", path.display()), e)
        })?;
        let meta = records
            .listing()
            .and_then(|dir| dir.metadata())
            .map_err(|e| record_error(format!("reading {}", path.display()), e))?;
        if meta.uid() != unistd::geteuid().as_raw() || meta.mode() & 0o022 != 0 {
            return Err(Error::UnsafeRecordDir {
                path: path.to_owned(),
                uid: meta.uid(),
                mode: meta.mode() & 0o7777,
            });
        }
        records.tidy_stale();
        Ok(records)
    }

    /// The peers recorded down for `target`'s network namespace, creating nothing: none when
    /// the directory or the record does not exist or cannot be read.
    pub fn recorded_in(path: &Path, target: &Target) -> Vec<PeerRecord> {
        let Ok(records) = DownRecords::open_existing(path) else {
            return Vec::new();
        };
        records.recorded(target).unwrap_or_default()
    }

    /// The peers recorded down for `target`'s network namespace.
    pub fn recorded(&self, target: &Target) -> Result<Vec<PeerRecord>> {
        self.read(&record_name(target)?)
    }

    /// Takes down the peers of `target`'s interfaces (of `only` that one; `lo` only when
    /// named) that are up, and records them. A parent device is refused (it carries the
    /// host's traffic too), as is a peer that cannot be found or, for the interface named,
    /// none at all.
    pub fn take_down(
        &self,
        target: &Target,
        inspection: &mut Inspection,
        only: Option<&str>,
    ) -> Result<Outcome> {
        self.change(target, inspection, only, false)
    }

    /// Brings back up the peers of `target`'s interfaces (of `only` that one) that the
    /// record says were taken down, and nothing else. Without `only`, recorded host peers no
    /// interface leads to any more (the container moved or deleted its end) are brought up
    /// by their ifindex when the link there still has the recorded name.
    pub fn bring_up(
        &self,
        target: &Target,
        inspection: &mut Inspection,
        only: Option<&str>,
    ) -> Result<Outcome> {
        self.change(target, inspection, only, true)
    }

    fn change(
        &self,
        target: &Target,
        inspection: &mut Inspection,
        only: Option<&str>,
        up: bool,
    ) -> Result<Outcome> {
        let name = record_name(target)?;
        let recorded = self.read(&name)?;
        let mut outcome = Outcome {
            recorded_before: recorded.len(),
            ..Outcome::default()
        };
        if up && recorded.is_empty() {
            return Ok(outcome);
        }
        let mut still_down = recorded.clone();
        let selected: Vec<Interface> = inspection
            .interfaces
            .iter()
            .filter(|i| only.is_none_or(|name| i.link.name == name))
            .filter(|i| i.link.name != "lo" || only.is_some())
            .cloned()
            .collect();
        for interface in &selected {
            let Some((peer, place)) = other_end(interface, only.is_some(), up)? else {
                continue;
            };
            let record = PeerRecord::of(peer, place);
            if up && !recorded.contains(&record) {
                continue; // not ours to bring up
            }
            if !up && !peer.admin_up {
                continue; // already down: not ours to bring back later
            }
            let mut other_socket;
            let socket = match place {
                Place::Home => &mut inspection.home,
                Place::Inside => &mut inspection.inside,
                Place::Other(netns) => {
                    other_socket = netns.socket()?;
                    &mut other_socket
                }
            };
            set_link(socket, &record, up)?;
            if up {
                still_down.retain(|r| r != &record);
            } else {
                still_down.push(record.clone());
            }
            outcome.changed.push(Change {
                peer: record,
                interface: Some(interface.link.name.clone()),
            });
        }
        if up && only.is_none() {
            restore_host_peers(&recorded, &mut still_down, inspection, &mut outcome)?;
        }
        self.write(&name, &still_down)?;
        Ok(outcome)
    }

    /// The directory at `path`, opened without following a link and without creating it.
    fn open_existing(path: &Path) -> io::Result<DownRecords> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        Ok(DownRecords {
            dir: file.into(),
            path: path.to_owned(),
        })
    }

    fn listing(&self) -> io::Result<File> {
        Ok(File::from(self.dir.try_clone()?))
    }

    /// Opens `name` (a file name of ours, never a path) in the directory, not following a link.
    fn open_file(&self, name: &str, flags: OFlag, mode: u32) -> io::Result<File> {
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = fcntl::openat(&self.dir, name, flags, Mode::from_bits_truncate(mode))?;
        Ok(File::from(fd))
    }

    fn read(&self, name: &str) -> Result<Vec<PeerRecord>> {
        let what = || format!("reading {}/{name}", self.path.display());
        let mut text = String::new();
        match self.open_file(name, OFlag::O_RDONLY, 0) {
            Ok(mut file) => file
                .read_to_string(&mut text)
                .map_err(|e| record_error(what(), e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(record_error(what(), e)),
        };
        Ok(text.lines().filter_map(PeerRecord::parse).collect())
    }

    /// Writes the record `name` (or removes it when empty), replacing it atomically.
    fn write(&self, name: &str, records: &[PeerRecord]) -> Result<()> {
        let shown = |name: &str| format!("{}/{name}", self.path.display());
        if records.is_empty() {
            return match unistd::unlinkat(&self.dir, name, UnlinkatFlags::NoRemoveDir) {
                Err(e) if e != nix::errno::Errno::ENOENT => {
                    Err(record_error(format!("removing {}", shown(name)), e.into()))
                }
                _ => Ok(()),
            };
        }
        let temporary = format!("{name}.tmp{}", std::process::id());
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL;
        let mut lines: Vec<String> = records.iter().map(PeerRecord::line).collect();
        lines.dedup();
        self.open_file(&temporary, flags, 0o600)
            .and_then(|mut file| file.write_all(format!("{}\n", lines.join("\n")).as_bytes()))
            .map_err(|e| record_error(format!("writing {}", shown(&temporary)), e))?;
        fcntl::renameat(&self.dir, temporary.as_str(), &self.dir, name)
            .map_err(|e| record_error(format!("writing {}", shown(name)), e.into()))
    }

    /// Removes the records of network namespaces that no longer exist.
    fn tidy_stale(&self) {
        use std::os::unix::fs::MetadataExt;
        let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{}", self.dir.as_raw_fd()))
        else {
            return;
        };
        let mut live = std::collections::HashSet::new();
        let processes = std::fs::read_dir("/proc").into_iter().flatten().flatten();
        let named = std::fs::read_dir("/run/netns")
            .into_iter()
            .flatten()
            .flatten();
        for path in processes
            .map(|e| e.path().join("ns/net"))
            .chain(named.map(|e| e.path()))
        {
            if let Ok(meta) = std::fs::metadata(path) {
                live.insert(format!("veth-down-{}-{}", meta.dev(), meta.ino()));
            }
        }
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("veth-down-") && !name.contains(".tmp") && !live.contains(&name) {
                let _ = unistd::unlinkat(&self.dir, name.as_str(), UnlinkatFlags::NoRemoveDir);
            }
        }
    }
}

/// The record file of `target`'s network namespace: named after its inode.
fn record_name(target: &Target) -> Result<String> {
    let id = target.namespace_id(Namespace::Net)?;
    Ok(format!("veth-down-{}-{}", id.dev, id.ino))
}

fn record_error(what: String, source: io::Error) -> Error {
    Error::Record { what, source }
}

/// The peer of `interface` and where it is; `None` when it has none (an error when the
/// interface was `named`); a parent device or an unreachable peer is refused.
fn other_end(interface: &Interface, named: bool, up: bool) -> Result<Option<(&Link, &Place)>> {
    let link = &interface.link;
    match &interface.other_end {
        OtherEnd::Found { link: other, place } if is_parented(link) => Err(Error::ParentDevice {
            interface: link.name.clone(),
            kind: link.kind.clone().unwrap_or_else(|| "link".to_owned()),
            parent: other.name.clone(),
            place: place.name(),
            direction: direction(up),
        }),
        OtherEnd::Found { link: other, place } => Ok(Some((other, place))),
        OtherEnd::Unreachable { netnsid, .. } => Err(Error::PeerUnreachable {
            interface: link.name.clone(),
            netnsid: *netnsid,
        }),
        OtherEnd::None if named => Err(Error::NoPeer {
            interface: link.name.clone(),
            kind: link.kind.clone().unwrap_or_else(|| "none".to_owned()),
        }),
        OtherEnd::None => Ok(None),
    }
}

fn direction(up: bool) -> &'static str {
    if up {
        "up"
    } else {
        "down"
    }
}

fn set_link(socket: &mut RouteSocket, peer: &PeerRecord, up: bool) -> Result<()> {
    socket
        .set_link_up(peer.index, up)
        .map_err(|source| Error::SetLink {
            name: peer.name.clone(),
            place: peer.place.clone(),
            direction: direction(up),
            source: Box::new(source),
        })
}

/// Brings up host peers still recorded down that no interface of the container leads to any
/// more, by their recorded ifindex when the link there still has the recorded name; a link
/// gone or renamed is not ours any more, and its record is dropped.
fn restore_host_peers(
    recorded: &[PeerRecord],
    still_down: &mut Vec<PeerRecord>,
    inspection: &mut Inspection,
    outcome: &mut Outcome,
) -> Result<()> {
    let home = Place::Home.name();
    for record in recorded {
        if record.place != home || !still_down.contains(record) {
            continue;
        }
        match inspection.home.link(record.index)? {
            Some(link) if link.name == record.name => {
                set_link(&mut inspection.home, record, true)?;
                outcome.changed.push(Change {
                    peer: record.clone(),
                    interface: None,
                });
            }
            _ => outcome.gone.push(record.clone()),
        }
        still_down.retain(|r| r != record);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(index: u32, name: &str) -> PeerRecord {
        PeerRecord {
            place: "host".to_owned(),
            index,
            name: name.to_owned(),
        }
    }

    #[test]
    fn the_record_directory_and_its_records_never_go_through_a_link() {
        let root = std::env::temp_dir().join(format!("nsdebug-net-down-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        // Created 0700 when missing; records written, read back, removed when empty.
        let path = root.join("run");
        let records = DownRecords::open(&path).unwrap();
        let keys = vec![peer(7, "veth1")];
        records.write("veth-down-1-2", &keys).unwrap();
        assert_eq!(
            std::fs::read_to_string(path.join("veth-down-1-2")).unwrap(),
            "host\t7\tveth1\n",
            "the file format other versions read"
        );
        assert_eq!(records.read("veth-down-1-2").unwrap(), keys);
        records.write("veth-down-1-2", &[]).unwrap();
        assert!(records.read("veth-down-1-2").unwrap().is_empty());
        // A record planted as a link is not read through, and writing replaces the link.
        let secret = root.join("secret");
        std::fs::write(&secret, "host\t1\teth0\n").unwrap();
        std::os::unix::fs::symlink(&secret, path.join("veth-down-3-4")).unwrap();
        assert!(records.read("veth-down-3-4").is_err());
        records.write("veth-down-3-4", &keys).unwrap();
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "host\t1\teth0\n");
        // The directory as a link, or writable by others, is refused.
        let elsewhere = root.join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("link")).unwrap();
        assert!(DownRecords::open(&root.join("link")).is_err());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            DownRecords::open(&elsewhere),
            Err(Error::UnsafeRecordDir { .. })
        ));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn records_of_namespaces_with_tabs_and_spaces_read_back_whole() {
        let record = PeerRecord {
            place: "ip netns blue\tsky".to_owned(),
            index: 12,
            name: "vethx".to_owned(),
        };
        assert_eq!(PeerRecord::parse(&record.line()), Some(record));
        assert_eq!(PeerRecord::parse("host\tnot-a-number\tx"), None);
    }
}
