//! The few system calls the audit needs beyond `std`: reading files relative to a directory
//! fd (so every read of a `/proc/PID` directory is of one process, even if its pid is later
//! reused), and looking a path up inside a process's root the way the process would
//! (`openat2` with `RESOLVE_IN_ROOT`, so the container's symlinks cannot point at the host's
//! files).

use std::ffi::CString;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{self, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

fn c_path(path: &str) -> io::Result<CString> {
    CString::new(path)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path with a NUL byte"))
}

/// Opens `name` (a relative path, no symlinks followed) beneath directory `dir`.
pub(crate) fn open_at(dir: &File, name: &str) -> io::Result<File> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
    )
}

/// Opens directory `name` beneath `dir`, following a final (magic) link: `root` of a `/proc/PID`.
pub(crate) fn open_dir_at(dir: &File, name: &str) -> io::Result<File> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
    )
}

fn openat(dir: &File, name: &str, flags: OFlag) -> io::Result<File> {
    Ok(File::from(fcntl::openat(dir, name, flags, Mode::empty())?))
}

/// Reads the text of `name` beneath directory `dir`.
pub(crate) fn read_at(dir: &File, name: &str) -> io::Result<String> {
    let mut text = String::new();
    open_at(dir, name)?.read_to_string(&mut text)?;
    Ok(text)
}

/// Opens a directory (`/proc/PID`, a process's root).
pub(crate) fn open_dir(path: &Path) -> io::Result<File> {
    Ok(File::from(fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?))
}

/// Opens `path` (absolute, as the process whose root `root` is would write it) inside
/// `root`: `..` and absolute symlinks stay in it, `/proc` magic links are refused.
fn open_in_root(root: &File, path: &str, flags: OFlag) -> io::Result<File> {
    let how = OpenHow::new()
        .flags(flags)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    // The root itself is "." (an empty path is no file).
    let relative = match path.trim_start_matches('/') {
        "" => ".",
        relative => relative,
    };
    Ok(File::from(fcntl::openat2(root, relative, how)?))
}

/// The metadata of `path` inside `root` (see [`open_in_root`]), the last component not followed.
pub(crate) fn stat_in_root(root: &File, path: &str) -> io::Result<Metadata> {
    open_in_root(
        root,
        path,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
    )?
    .metadata()
}

/// The target of symlink `name` beneath directory `dir` (e.g. `ns/net` of a `/proc/PID`).
pub(crate) fn readlink_at(dir: &File, name: &str) -> io::Result<String> {
    Ok(fcntl::readlinkat(dir, name)?.to_string_lossy().into_owned())
}

/// An entry of a directory listed by [`list_in_root`].
pub(crate) struct Entry {
    /// Its name in the directory.
    pub name: String,
    /// Its metadata, the entry itself (not what a symlink points to).
    pub meta: Metadata,
    /// Whether it is an executable file with file capabilities (`security.capability`).
    pub file_caps: bool,
}

/// The entries of directory `path` inside `root` (resolved as [`stat_in_root`] does).
pub(crate) fn list_in_root(root: &File, path: &str) -> io::Result<Vec<Entry>> {
    list_in_root_at_most(root, path, usize::MAX).map(|(entries, _)| entries)
}

/// [`list_in_root`] stopping after `max` entries (a directory the container fills costs
/// what it allows, no more); `true` when entries were left unread.
pub(crate) fn list_in_root_at_most(
    root: &File,
    path: &str,
    max: usize,
) -> io::Result<(Vec<Entry>, bool)> {
    let dir = open_in_root(
        root,
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
    )?;
    // The fd's own directory, whatever its path: the magic link is not resolved by name,
    // and an entry's name is one component, not followed if it is a symlink.
    let base = format!("/proc/self/fd/{}", dir.as_raw_fd());
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(&base)? {
        if entries.len() == max {
            return Ok((entries, true));
        }
        let entry = entry?;
        let meta = entry.metadata()?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let file_caps = meta.is_file()
            && std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0
            && {
                // Only the attribute's size is asked: nothing of it is read.
                match rustix::fs::lgetxattr_query(entry.path(), "security.capability") {
                    Ok(size) => size > 0,
                    Err(e)
                        if e == rustix::io::Errno::NODATA || e == rustix::io::Errno::OPNOTSUPP =>
                    {
                        false
                    }
                    Err(e) => return Err(e.into()),
                }
            };
        entries.push(Entry {
            name,
            meta,
            file_caps,
        });
    }
    Ok((entries, false))
}

/// Opens `name` beneath `dir` with `O_PATH`, following a final magic link (`fd/7`, `cwd`,
/// `root`, `map_files/...` of a `/proc/PID`): the object itself, for `fstat`, never read.
pub(crate) fn open_path_at(dir: &File, name: &str) -> io::Result<File> {
    openat(dir, name, OFlag::O_PATH | OFlag::O_CLOEXEC)
}

/// The id of the mount `file` is on (`mnt_id` of our own fdinfo for it).
pub(crate) fn mount_id(file: &File) -> io::Result<u64> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", file.as_raw_fd()))?;
    crate::mounts::parse_fdinfo(&info)
        .map(|(mnt_id, _)| mnt_id)
        .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))
}

/// The filesystem type (`f_type` magic) `file` is on.
pub(crate) fn fs_type(file: &File) -> io::Result<i64> {
    let stat = nix::sys::statfs::fstatfs(file)?;
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    Ok(stat.filesystem_type().0 as i64)
}

/// Whether the mount (or superblock) `file` is on is read-only.
pub(crate) fn read_only(file: &File) -> io::Result<bool> {
    let stat = nix::sys::statvfs::fstatvfs(file)?;
    Ok(stat.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

// `ioctl(NS_GET_OWNER_UID)` (`_IO(0xb7, 0x4)`, with a `uid_t *` argument despite its `_IO`
// encoding, hence a "bad" ioctl): the uid that created a user namespace.
nix::ioctl_read_bad!(ns_get_owner_uid, 0xb704, libc::uid_t);

/// The uid (as the host sees it) that owns the user namespace of the `/proc/PID` (or task)
/// directory `dir`: the one whose capabilities in its parent namespace act on it.
pub(crate) fn userns_owner(dir: &File) -> io::Result<u32> {
    // A magic link: followed (O_NOFOLLOW would refuse it), never read.
    let ns = openat(dir, "ns/user", OFlag::O_RDONLY | OFlag::O_CLOEXEC)?;
    let mut uid: libc::uid_t = 0;
    // SAFETY: `ns` is an open namespace file for the call and `uid` a valid uid_t the
    // kernel writes the owner into; on any other file the kernel returns ENOTTY.
    unsafe { ns_get_owner_uid(ns.as_raw_fd(), &mut uid) }?;
    Ok(uid)
}

/// The largest file handle the kernel hands out (`MAX_HANDLE_SZ`).
const MAX_HANDLE_SZ: usize = 128;

/// Where `file` is as the host sees it: its file handle (`name_to_handle_at`) opened
/// through the host's mount at `point` (looked up in the host's root `root`), and the path,
/// device and inode of what that opens. Needs CAP_DAC_READ_SEARCH.
pub(crate) fn path_by_handle(
    file: &File,
    root: &File,
    point: &str,
) -> io::Result<(String, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mount = open_in_root(
        root,
        point,
        // open_by_handle_at refuses an O_PATH mount fd.
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
    )?;
    // struct file_handle { u32 handle_bytes; i32 handle_type; u8 f_handle[]; }, kept as u32s
    // so the header is aligned.
    let mut buffer = [0u32; 2 + MAX_HANDLE_SZ / 4];
    buffer[0] = MAX_HANDLE_SZ as u32;
    let mut mount_id: libc::c_int = 0;
    let empty = c_path("")?;
    // SAFETY: `buffer` is a file_handle header followed by MAX_HANDLE_SZ bytes, as its
    // handle_bytes says; `empty` is NUL-terminated; `mount_id` is a valid int to write; the
    // fd is open for the call.
    let done = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            file.as_raw_fd(),
            empty.as_ptr(),
            buffer.as_mut_ptr(),
            &mut mount_id as *mut libc::c_int,
            libc::AT_EMPTY_PATH,
        )
    };
    if done < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the mount fd is open, `buffer` holds the handle the kernel just wrote.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount.as_raw_fd(),
            buffer.as_mut_ptr(),
            libc::O_PATH | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = libc::c_int::try_from(fd).map_err(|_| io::Error::other("fd out of range"))?;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    let opened = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let meta = opened.metadata()?;
    let path = std::fs::read_link(format!("/proc/self/fd/{}", opened.as_raw_fd()))?;
    Ok((path.to_string_lossy().into_owned(), meta.dev(), meta.ino()))
}
