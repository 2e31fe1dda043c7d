//! libpcap, loaded with `dlopen(3)` the first time a capture or a savefile is opened.
//!
//! Nothing links against libpcap: a program built on this crate starts on a machine without
//! it (libpcap drags libdbus, libsystemd and libgcrypt along), and only opening a capture
//! says what is missing ([`Error::Missing`]). The API is the small part of libpcap this crate
//! needs: open a savefile or a live interface, filter, read packets, save them.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::OnceLock;

/// The shared objects tried, in order: Debian's and Ubuntu's soname, then other distributions'.
const SONAMES: [&str; 3] = ["libpcap.so.0.8", "libpcap.so.1", "libpcap.so"];

/// The package that provides libpcap on Debian and Ubuntu.
pub const DEBIAN_PACKAGE: &str = "libpcap0.8";

/// `PCAP_ERRBUF_SIZE`.
const ERRBUF_SIZE: usize = 256;

/// The stdio buffer of a savefile: libpcap reads each record with two small `fread`s, and
/// stdio's default buffer (one page) would make that a `read(2)` every 4 KiB.
const SAVEFILE_BUFFER: usize = 1 << 20;

/// What went wrong in libpcap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// libpcap could not be loaded (not installed, or not a usable library).
    #[error("libpcap is not available ({0}); captures need it: apt install {DEBIAN_PACKAGE}")]
    Missing(String),
    /// A savefile has no more packets.
    #[error("no more packets to read from the file")]
    NoMorePackets,
    /// A non-blocking live capture has no packet ready.
    #[error("timeout expired")]
    TimeoutExpired,
    /// libpcap reported an error.
    #[error("libpcap error: {0}")]
    Pcap(String),
    /// A string handed to libpcap contains a NUL byte.
    #[error("{0:?} contains a NUL byte")]
    Nul(String),
}

/// `struct pcap_pkthdr`: when a packet was captured and how long it is.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PacketHeader {
    /// Capture time.
    pub ts: libc::timeval,
    /// Bytes captured (the length of [`Packet::data`]).
    pub caplen: u32,
    /// Bytes on the wire.
    pub len: u32,
}

/// A packet borrowed from libpcap's buffer until the next read.
#[derive(Debug)]
pub struct Packet<'a> {
    /// Its header.
    pub header: &'a PacketHeader,
    /// The bytes captured.
    pub data: &'a [u8],
}

/// Counters of a live capture (`struct pcap_stat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets received.
    pub received: u32,
    /// Packets dropped for lack of buffer space.
    pub dropped: u32,
    /// Packets dropped by the interface or its driver.
    pub if_dropped: u32,
}

#[repr(C)]
struct PcapStat {
    ps_recv: c_uint,
    ps_drop: c_uint,
    ps_ifdrop: c_uint,
}

#[repr(C)]
struct BpfProgram {
    bf_len: c_uint,
    bf_insns: *mut c_void,
}

type PcapT = c_void;
type DumperT = c_void;

macro_rules! functions {
    ($($name:ident: fn($($arg:ty),*) $(-> $ret:ty)?;)*) => {
        /// The libpcap functions used, resolved once.
        #[allow(non_snake_case)]
        struct Lib {
            $($name: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)*
        }

        impl Lib {
            fn load() -> Result<Lib, String> {
                let handle = open_library()?;
                Ok(Lib {
                    $($name: {
                        let symbol = symbol(handle, concat!(stringify!($name), "\0"))?;
                        // SAFETY: the symbol is libpcap's function of that name, whose C
                        // signature (pcap.h, stable since libpcap 1.5) is the one declared here.
                        unsafe { std::mem::transmute::<*mut c_void, unsafe extern "C" fn($($arg),*) $(-> $ret)?>(symbol) }
                    },)*
                })
            }
        }
    };
}

functions! {
    pcap_open_offline: fn(*const c_char, *mut c_char) -> *mut PcapT;
    pcap_fopen_offline: fn(*mut libc::FILE, *mut c_char) -> *mut PcapT;
    pcap_create: fn(*const c_char, *mut c_char) -> *mut PcapT;
    pcap_set_promisc: fn(*mut PcapT, c_int) -> c_int;
    pcap_set_immediate_mode: fn(*mut PcapT, c_int) -> c_int;
    pcap_set_snaplen: fn(*mut PcapT, c_int) -> c_int;
    pcap_set_buffer_size: fn(*mut PcapT, c_int) -> c_int;
    pcap_set_timeout: fn(*mut PcapT, c_int) -> c_int;
    pcap_activate: fn(*mut PcapT) -> c_int;
    pcap_statustostr: fn(c_int) -> *const c_char;
    pcap_geterr: fn(*mut PcapT) -> *mut c_char;
    pcap_setnonblock: fn(*mut PcapT, c_int, *mut c_char) -> c_int;
    pcap_next_ex: fn(*mut PcapT, *mut *mut PacketHeader, *mut *const u8) -> c_int;
    pcap_get_selectable_fd: fn(*mut PcapT) -> c_int;
    pcap_stats: fn(*mut PcapT, *mut PcapStat) -> c_int;
    pcap_compile: fn(*mut PcapT, *mut BpfProgram, *const c_char, c_int, c_uint) -> c_int;
    pcap_setfilter: fn(*mut PcapT, *mut BpfProgram) -> c_int;
    pcap_freecode: fn(*mut BpfProgram);
    pcap_datalink: fn(*mut PcapT) -> c_int;
    pcap_datalink_val_to_name: fn(c_int) -> *const c_char;
    pcap_close: fn(*mut PcapT);
    pcap_dump_fopen: fn(*mut PcapT, *mut libc::FILE) -> *mut DumperT;
    pcap_dump: fn(*mut u8, *const PacketHeader, *const u8);
    pcap_dump_flush: fn(*mut DumperT) -> c_int;
    pcap_dump_close: fn(*mut DumperT);
}

fn dlerror() -> String {
    // SAFETY: dlerror(3) returns NULL or a NUL-terminated string valid until the next dl* call
    // of this thread; it is copied at once.
    unsafe {
        let message = libc::dlerror();
        if message.is_null() {
            "unknown error".to_owned()
        } else {
            CStr::from_ptr(message).to_string_lossy().into_owned()
        }
    }
}

fn open_library() -> Result<*mut c_void, String> {
    let mut first_error = None;
    for soname in SONAMES {
        let name = CString::new(soname).map_err(|e| e.to_string())?;
        // SAFETY: a NUL-terminated name; the handle is kept for the life of the process
        // (never dlclose'd), so the functions resolved from it stay valid.
        let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if !handle.is_null() {
            return Ok(handle);
        }
        first_error.get_or_insert_with(dlerror);
    }
    Err(first_error.unwrap_or_else(|| "not found".to_owned()))
}

fn symbol(handle: *mut c_void, name: &'static str) -> Result<*mut c_void, String> {
    // SAFETY: a handle from dlopen and a NUL-terminated name (the macro appends the NUL).
    let symbol = unsafe { libc::dlsym(handle, name.as_ptr().cast()) };
    if symbol.is_null() {
        return Err(format!("{}: {}", name.trim_end_matches('\0'), dlerror()));
    }
    Ok(symbol)
}

fn lib() -> Result<&'static Lib, Error> {
    static LIB: OnceLock<Result<Lib, String>> = OnceLock::new();
    LIB.get_or_init(Lib::load)
        .as_ref()
        .map_err(|message| Error::Missing(message.clone()))
}

/// Whether libpcap can be loaded, and if not why (the error a capture would give).
pub fn available() -> Result<(), Error> {
    lib().map(|_| ())
}

fn c_string(text: &str) -> Result<CString, Error> {
    CString::new(text).map_err(|_| Error::Nul(text.to_owned()))
}

fn errbuf_message(errbuf: &[c_char; ERRBUF_SIZE]) -> String {
    // SAFETY: libpcap writes a NUL-terminated message into the buffer it was given; the
    // buffer was zeroed, so it is NUL-terminated even if libpcap wrote nothing.
    unsafe { CStr::from_ptr(errbuf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// An open libpcap handle: a savefile being read or an activated live capture.
#[derive(Debug)]
pub struct Capture {
    handle: *mut PcapT,
    /// The stdio buffer of a savefile's stream: freed after the handle (and its stream) is
    /// closed, see [`Drop`].
    _buffer: Option<Box<[u8]>>,
}

// SAFETY: a pcap_t may be used from any thread as long as one thread at a time does (libpcap
// keeps no thread-local state for it); `Capture` is not `Sync` and every use takes `&mut` or
// `&self` on the one owner.
unsafe impl Send for Capture {}

impl Capture {
    /// Opens a pcap or pcapng file (`-` for standard input).
    pub fn from_file(path: &std::path::Path) -> Result<Capture, Error> {
        use std::os::fd::IntoRawFd;
        use std::os::unix::ffi::OsStrExt;
        let lib = lib()?;
        let mut errbuf = [0 as c_char; ERRBUF_SIZE];
        if path.as_os_str() == "-" {
            let name = c"-";
            // SAFETY: NUL-terminated path and an errbuf of PCAP_ERRBUF_SIZE bytes.
            let handle = unsafe { (lib.pcap_open_offline)(name.as_ptr(), errbuf.as_mut_ptr()) };
            if handle.is_null() {
                return Err(Error::Pcap(errbuf_message(&errbuf)));
            }
            return Ok(Capture {
                handle,
                _buffer: None,
            });
        }
        if path.as_os_str().as_bytes().contains(&0) {
            return Err(Error::Nul(path.display().to_string()));
        }
        let file = std::fs::File::open(path).map_err(|e| {
            let message = e.raw_os_error().map_or(e.to_string(), |code| {
                // libpcap's wording: the path and strerror.
                std::io::Error::from_raw_os_error(code)
                    .to_string()
                    .split(" (os error")
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            });
            Error::Pcap(format!("{}: {message}", path.display()))
        })?;
        // SAFETY: a descriptor we own, handed to a stdio stream that owns it once this
        // succeeds (until then the File still owns it, and closes it on failure).
        let stream = unsafe { libc::fdopen(file.as_raw_fd(), c"r".as_ptr()) };
        if stream.is_null() {
            let error = std::io::Error::last_os_error();
            return Err(Error::Pcap(format!("{}: {error}", path.display())));
        }
        let _owned_by_the_stream = file.into_raw_fd();
        let mut buffer = vec![0u8; SAVEFILE_BUFFER].into_boxed_slice();
        // SAFETY: a stream not yet read from, and a buffer of the size given that outlives it
        // (kept in the Capture, freed only after pcap_close closed the stream).
        unsafe {
            libc::setvbuf(
                stream,
                buffer.as_mut_ptr().cast(),
                libc::_IOFBF,
                buffer.len(),
            )
        };
        // SAFETY: an open stream and an errbuf of PCAP_ERRBUF_SIZE bytes; on success the
        // handle owns the stream (pcap_close closes it).
        let handle = unsafe { (lib.pcap_fopen_offline)(stream, errbuf.as_mut_ptr()) };
        if handle.is_null() {
            // SAFETY: libpcap did not take the stream: close it (and its descriptor).
            unsafe { libc::fclose(stream) };
            return Err(Error::Pcap(errbuf_message(&errbuf)));
        }
        Ok(Capture {
            handle,
            _buffer: Some(buffer),
        })
    }

    /// Opens a live capture on `interface` (`any` for all) in the calling thread's network
    /// namespace: not promiscuous, 256 KiB snapshots, a 64 MiB buffer of blocks handed over
    /// at most 100 ms late and, once activated, non-blocking reads.
    pub fn live(interface: &str) -> Result<Capture, Error> {
        let lib = lib()?;
        let name = c_string(interface)?;
        let mut errbuf = [0 as c_char; ERRBUF_SIZE];
        // SAFETY: NUL-terminated name and an errbuf of PCAP_ERRBUF_SIZE bytes.
        let handle = unsafe { (lib.pcap_create)(name.as_ptr(), errbuf.as_mut_ptr()) };
        if handle.is_null() {
            return Err(Error::Pcap(errbuf_message(&errbuf)));
        }
        // Owned from here on: an error below closes it.
        let capture = Capture {
            handle,
            _buffer: None,
        };
        // SAFETY: a created, not yet activated handle: the setters are allowed on it.
        unsafe {
            (lib.pcap_set_promisc)(handle, 0);
            // Not immediate mode: on Linux that means TPACKET_V2, whose ring has one slot
            // per packet sized for the snapshot length (256 KiB): 64 MiB held 256 packets,
            // and a burst of small ones (a flood of SYNs) was mostly dropped by the kernel.
            // TPACKET_V3 packs packets into blocks, handed over when full or after the
            // timeout: at most 100 ms late.
            (lib.pcap_set_immediate_mode)(handle, 0);
            (lib.pcap_set_snaplen)(handle, 262_144);
            (lib.pcap_set_buffer_size)(handle, 64 << 20);
            (lib.pcap_set_timeout)(handle, 100);
        }
        // SAFETY: a created handle, activated once.
        let status = unsafe { (lib.pcap_activate)(handle) };
        // A positive status is a warning (promiscuous mode not supported, ...): usable.
        if status < 0 {
            return Err(Error::Pcap(capture.activation_error(lib, status)));
        }
        let mut errbuf = [0 as c_char; ERRBUF_SIZE];
        // SAFETY: an activated handle and an errbuf of PCAP_ERRBUF_SIZE bytes.
        if unsafe { (lib.pcap_setnonblock)(handle, 1, errbuf.as_mut_ptr()) } < 0 {
            return Err(Error::Pcap(errbuf_message(&errbuf)));
        }
        Ok(capture)
    }

    /// pcap_activate's error: the handle's message when it has one, else the status's text
    /// (as tcpdump reports it).
    fn activation_error(&self, lib: &Lib, status: c_int) -> String {
        let detail = self.last_error(lib);
        // SAFETY: pcap_statustostr returns a static (or thread-local) NUL-terminated string.
        let text = unsafe { CStr::from_ptr((lib.pcap_statustostr)(status)) }
            .to_string_lossy()
            .into_owned();
        if detail.is_empty() {
            text
        } else if text.is_empty() || detail.contains(&text) {
            detail
        } else {
            format!("{text} ({detail})")
        }
    }

    fn last_error(&self, lib: &Lib) -> String {
        // SAFETY: pcap_geterr returns the handle's NUL-terminated message buffer; copied at once.
        unsafe { CStr::from_ptr((lib.pcap_geterr)(self.handle)) }
            .to_string_lossy()
            .into_owned()
    }

    fn lib(&self) -> &'static Lib {
        lib_loaded()
    }

    /// Sets a tcpdump-syntax filter, compiled by libpcap (optimised when `optimize`).
    pub fn filter(&mut self, expression: &str, optimize: bool) -> Result<(), Error> {
        let lib = self.lib();
        let text = c_string(expression)?;
        let mut program = BpfProgram {
            bf_len: 0,
            bf_insns: std::ptr::null_mut(),
        };
        // SAFETY: our handle, a program for libpcap to fill, a NUL-terminated expression;
        // PCAP_NETMASK_UNKNOWN (0xffffffff) as netmask.
        if unsafe {
            (lib.pcap_compile)(
                self.handle,
                &mut program,
                text.as_ptr(),
                c_int::from(optimize),
                u32::MAX,
            )
        } < 0
        {
            return Err(Error::Pcap(self.last_error(lib)));
        }
        // SAFETY: the program compiled above, installed (libpcap copies it) then freed once.
        let status = unsafe {
            let status = (lib.pcap_setfilter)(self.handle, &mut program);
            (lib.pcap_freecode)(&mut program);
            status
        };
        if status < 0 {
            return Err(Error::Pcap(self.last_error(lib)));
        }
        Ok(())
    }

    /// The capture's link type (`DLT_*`).
    pub fn datalink(&self) -> i32 {
        // SAFETY: our activated or offline handle.
        unsafe { (self.lib().pcap_datalink)(self.handle) }
    }

    /// The name of a `DLT_*` number, as libpcap knows it.
    pub fn datalink_name(dlt: i32) -> Option<String> {
        let lib = lib().ok()?;
        // SAFETY: returns NULL or a static NUL-terminated name.
        let name = unsafe { (lib.pcap_datalink_val_to_name)(dlt) };
        (!name.is_null()).then(|| {
            // SAFETY: checked non-NULL; a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(name) };
            name.to_string_lossy().into_owned()
        })
    }

    /// The next packet: [`Error::NoMorePackets`] at the end of a file,
    /// [`Error::TimeoutExpired`] when a live capture has nothing ready.
    pub fn next_packet(&mut self) -> Result<Packet<'_>, Error> {
        let lib = self.lib();
        let mut header: *mut PacketHeader = std::ptr::null_mut();
        let mut data: *const u8 = std::ptr::null();
        // SAFETY: our handle and two out-pointers libpcap fills on success.
        match unsafe { (lib.pcap_next_ex)(self.handle, &mut header, &mut data) } {
            1 if !header.is_null() && !data.is_null() => {
                // SAFETY: on success libpcap's header and data stay valid until the next call on
                // this handle, which the `&mut self` borrow of the returned Packet prevents;
                // data holds caplen bytes.
                unsafe {
                    let header = &*header;
                    let data = std::slice::from_raw_parts(data, header.caplen as usize);
                    Ok(Packet { header, data })
                }
            }
            0 | 1 => Err(Error::TimeoutExpired),
            -2 => Err(Error::NoMorePackets),
            _ => Err(Error::Pcap(self.last_error(lib))),
        }
    }

    /// Kernel counters of a live capture.
    pub fn stats(&mut self) -> Result<Stats, Error> {
        let lib = self.lib();
        let mut stat = PcapStat {
            ps_recv: 0,
            ps_drop: 0,
            ps_ifdrop: 0,
        };
        // SAFETY: our handle and a pcap_stat to fill.
        if unsafe { (lib.pcap_stats)(self.handle, &mut stat) } < 0 {
            return Err(Error::Pcap(self.last_error(lib)));
        }
        Ok(Stats {
            received: stat.ps_recv,
            dropped: stat.ps_drop,
            if_dropped: stat.ps_ifdrop,
        })
    }

    /// Saves packets of this capture's link type to `fd` as a pcap file; the [`Savefile`]
    /// owns the descriptor from then on (also when this fails).
    pub fn savefile_fd(&self, fd: std::os::fd::OwnedFd) -> Result<Savefile, Error> {
        use std::os::fd::IntoRawFd;
        let lib = self.lib();
        // SAFETY: a descriptor we own, handed to a stdio stream that owns it once this
        // succeeds (until then `fd` still owns it, and closes it on failure).
        let file = unsafe { libc::fdopen(fd.as_raw_fd(), c"w".as_ptr()) };
        if file.is_null() {
            let error = std::io::Error::last_os_error();
            return Err(Error::Pcap(format!("fdopen: {error}")));
        }
        let _owned_by_the_stream = fd.into_raw_fd();
        // SAFETY: our handle and an open stream, owned by the dumper on success.
        let dumper = unsafe { (lib.pcap_dump_fopen)(self.handle, file) };
        if dumper.is_null() {
            // SAFETY: the stream was not taken: close it (and its descriptor).
            unsafe { libc::fclose(file) };
            return Err(Error::Pcap(self.last_error(lib)));
        }
        Ok(Savefile { dumper })
    }
}

impl Capture {
    /// The descriptor to wait on for packets, when libpcap has one (live captures on Linux).
    pub fn selectable_fd(&self) -> Option<BorrowedFd<'_>> {
        let raw = self.as_raw_fd();
        // SAFETY: libpcap keeps it open until pcap_close, which only Drop calls: it outlives
        // the borrow of `self`.
        (raw >= 0).then(|| unsafe { BorrowedFd::borrow_raw(raw) })
    }
}

impl AsRawFd for Capture {
    fn as_raw_fd(&self) -> RawFd {
        // SAFETY: our handle; -1 when it has no selectable descriptor (poll then ignores it).
        unsafe { (self.lib().pcap_get_selectable_fd)(self.handle) }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        // SAFETY: our handle, closed once.
        unsafe { (self.lib().pcap_close)(self.handle) };
    }
}

/// A pcap file being written ([`Capture::savefile_fd`]); closed when dropped.
#[derive(Debug)]
pub struct Savefile {
    dumper: *mut DumperT,
}

// SAFETY: the dumper (a FILE* and a header) has one owner, used by one thread at a time.
unsafe impl Send for Savefile {}

impl Savefile {
    /// Appends a packet.
    pub fn write(&mut self, packet: &Packet<'_>) {
        // SAFETY: our dumper (passed as pcap_dump's `user` argument, as pcap.h documents), a
        // header and caplen bytes of data.
        unsafe {
            (lib_loaded().pcap_dump)(self.dumper.cast(), packet.header, packet.data.as_ptr())
        };
    }

    /// Flushes what was written to the file.
    pub fn flush(&mut self) -> std::io::Result<()> {
        // SAFETY: our dumper.
        if unsafe { (lib_loaded().pcap_dump_flush)(self.dumper) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Savefile {
    fn drop(&mut self) {
        // SAFETY: our dumper, closed once (it closes its stream and descriptor).
        unsafe { (lib_loaded().pcap_dump_close)(self.dumper) };
    }
}

/// The library, for objects that exist only once it loaded.
fn lib_loaded() -> &'static Lib {
    match lib() {
        Ok(lib) => lib,
        Err(_) => unreachable!("libpcap objects exist only after libpcap loaded"),
    }
}
