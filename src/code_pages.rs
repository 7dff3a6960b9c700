//! Idle memory (issue 14): once a server has started, its code and read-only data are mapped
//! page by page as they are touched, not 64 KiB at a time, and what start-up mapped is let go.
//!
//! On a read fault in a file mapping, Linux also maps the up to 15 neighbouring pages that are
//! in the page cache within the aligned 64 KiB around it ("fault-around", one system-wide
//! setting). The code a server runs is scattered over the binary's 44 MB of `.text`, so after
//! `initialize` it held 21 MiB of code pages of which it had touched 4.8 MiB, and 2.2 MiB of
//! read-only data for 0.8 MiB touched: of an idle RSS of 30 MiB (warm page cache), 12.5 with
//! page-by-page faults from the start. `madvise(MADV_RANDOM)` does not change fault-around
//! (Linux 6.18's `should_fault_around` looks only at the mapping's `map_pages` and its
//! userfaultfd flags). A mapping registered with userfaultfd in write-protect mode is faulted
//! without fault-around, and with `UFFD_FEATURE_WP_ASYNC` (Linux 6.7) the kernel resolves
//! write-protect faults itself, so no thread serves them (and these mappings are never
//! written).
//!
//! Registering first thing cost about 900 more minor faults before the `initialize` answer
//! (0.9-1.6 ms). So start-up runs with fault-around, and [`RELEASE_AFTER`] the start a thread
//! registers the mappings and lets go of the pages they hold (`MADV_DONTNEED`: a private file
//! mapping's page is read again from the page cache, unchanged, when next touched). What stays
//! resident is what the session touches since: 4.5 MiB idle instead of 12.6, and the first
//! calls fault their code in again, a page at a time.
//!
//! `UFFD_USER_MODE_ONLY` makes the call allowed without privileges (`vm.unprivileged_userfaultfd`
//! = 0, the default). Where the kernel refuses (older than 6.7, no `CONFIG_USERFAULTFD`, a
//! seccomp profile that denies the call) the process keeps fault-around. The userfaultfd stays
//! open for the life of the process (closing it would undo the registration); it is
//! close-on-exec, and a forked child's mappings lose the registration (no `EVENT_FORK`).

use std::os::fd::{AsRawFd as _, FromRawFd as _, IntoRawFd as _, OwnedFd};

use nix::libc;

const UFFD_API: u64 = 0xAA;
const UFFD_USER_MODE_ONLY: libc::c_int = 1;
const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;

/// `struct uffdio_api` of `<linux/userfaultfd.h>`.
#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

/// `struct uffdio_register` of `<linux/userfaultfd.h>` (its `range` inlined).
#[repr(C)]
struct UffdioRegister {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

/// `_IOWR(0xAA, nr, T)`.
const fn iowr<T>(nr: u64) -> u64 {
    (3 << 30) | ((std::mem::size_of::<T>() as u64) << 16) | (0xAA << 8) | nr
}
const UFFDIO_API: u64 = iowr::<UffdioApi>(0x3F);
const UFFDIO_REGISTER: u64 = iowr::<UffdioRegister>(0x00);

/// How long after start the start-up's pages are let go ([`release_after_start`]).
pub const RELEASE_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

/// Starts a thread that, [`RELEASE_AFTER`] the start, calls [`map_on_touch`]: start-up runs
/// with fault-around (0.9-1.6 ms faster to the `initialize` answer on the bench machine, 900
/// fewer faults), then lets its pages go, so what stays resident is what the session touches.
/// A session's `initialize` comes within milliseconds of the spawn; should start-up still be
/// running at that point, it goes on with one fault per page, as it did before.
pub fn release_after_start() {
    let started = std::thread::Builder::new()
        .name("pi-mcp-pages".into())
        .spawn(|| {
            std::thread::sleep(RELEASE_AFTER);
            match map_on_touch() {
                Ok(Mapped {
                    registered,
                    released,
                }) => tracing::debug!(
                    "code pages: {registered} mappings mapped page by page, {released} let go"
                ),
                Err(e) => tracing::debug!("code pages are mapped 64 KiB at a time: {e}"),
            }
        });
    if let Err(e) = started {
        tracing::debug!("code pages are mapped 64 KiB at a time: no thread ({e})");
    }
}

/// What [`map_on_touch`] did.
#[derive(Debug, PartialEq, Eq)]
pub struct Mapped {
    /// Mappings registered: mapped page by page from now on.
    pub registered: usize,
    /// Mappings whose resident pages were let go (`MADV_DONTNEED`).
    pub released: usize,
}

/// Registers every read-only private file mapping of the process (the binary's code and
/// read-only data, the shared libraries') so that the kernel maps their pages only as they
/// are touched, and lets go of the pages they hold now (they are read again from the page
/// cache when touched). A mapping with private copies of pages (`Anonymous` in smaps: the
/// relocated read-only data, a debugger's breakpoint) keeps its pages: letting them go would
/// lose what was written into them. An error says why no mapping could be registered. A
/// second call registers only the mappings made since the first.
pub fn map_on_touch() -> Result<Mapped, String> {
    // SAFETY: userfaultfd takes an integer flag argument and returns a new descriptor or -1.
    let raw = unsafe {
        libc::syscall(
            libc::SYS_userfaultfd,
            libc::O_CLOEXEC | libc::O_NONBLOCK | UFFD_USER_MODE_ONLY,
        )
    };
    if raw < 0 {
        return Err(format!("userfaultfd: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a descriptor just returned to us and owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw as libc::c_int) };
    let mut api = UffdioApi {
        api: UFFD_API,
        features: UFFD_FEATURE_WP_ASYNC,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_API reads and writes the `uffdio_api` we own; the descriptor is open.
    if unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_API as _, &mut api) } < 0 {
        return Err(format!(
            "userfaultfd without asynchronous write-protect (Linux 6.7): {}",
            std::io::Error::last_os_error()
        ));
    }
    let smaps = std::fs::read_to_string("/proc/self/smaps").map_err(|e| e.to_string())?;
    let mut done = Mapped {
        registered: 0,
        released: 0,
    };
    for mapping in read_only_file_mappings(&smaps) {
        let mut reg = UffdioRegister {
            start: mapping.start,
            len: mapping.end - mapping.start,
            mode: UFFDIO_REGISTER_MODE_WP,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_REGISTER reads and writes the `uffdio_register` we own; it changes
        // only the fault handling of an existing mapping of this process, not its contents.
        if unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_REGISTER as _, &mut reg) } != 0 {
            continue;
        }
        done.registered += 1;
        if mapping.anonymous_kib != 0 {
            continue;
        }
        // SAFETY: the range is a read-only private file mapping without private copies of
        // pages (and it cannot get any: nothing writes a read-only mapping); its pages are
        // read again, the same, from the file when touched. Contents do not change.
        let released = unsafe {
            libc::madvise(
                mapping.start as *mut libc::c_void,
                (mapping.end - mapping.start) as usize,
                libc::MADV_DONTNEED,
            )
        };
        if released == 0 {
            done.released += 1;
        }
    }
    if done.registered == 0 {
        return Err("no mapping could be registered".into());
    }
    // Held open until the process ends: closing it would undo the registrations.
    let _ = fd.into_raw_fd();
    Ok(done)
}

/// A private, readable, not writable mapping of a file.
#[derive(Debug, PartialEq, Eq)]
struct ReadOnlyMapping {
    start: u64,
    end: u64,
    /// Private copies of its pages (smaps' `Anonymous`), in KiB.
    anonymous_kib: u64,
}

/// Each private, readable, not writable mapping of a file in a `/proc/<pid>/smaps` text. A
/// mapping whose `Anonymous` line is missing counts as holding private copies.
fn read_only_file_mappings(smaps: &str) -> impl Iterator<Item = ReadOnlyMapping> + '_ {
    let mut lines = smaps.lines().peekable();
    std::iter::from_fn(move || {
        loop {
            let header = lines.next()?;
            let mut anonymous_kib = u64::MAX;
            while let Some(field) = lines.next_if(|l| !is_mapping_header(l)) {
                if let Some(kib) = field.strip_prefix("Anonymous:") {
                    let kib = kib.trim().trim_end_matches("kB").trim();
                    anonymous_kib = kib.parse().unwrap_or(u64::MAX);
                }
            }
            if let Some((start, end)) = read_only_file_range(header) {
                return Some(ReadOnlyMapping {
                    start,
                    end,
                    anonymous_kib,
                });
            }
        }
    })
}

/// Whether `line` starts a mapping's block (`start-end perms ...`) rather than being a field
/// (`Name:   value`).
fn is_mapping_header(line: &str) -> bool {
    line.split_ascii_whitespace().next().is_some_and(|range| {
        range.contains('-') && range.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
    })
}

/// The `start..end` of a header line of a private, readable, not writable file mapping.
fn read_only_file_range(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_ascii_whitespace();
    let range = fields.next()?;
    let perms = fields.next()?.as_bytes();
    let path = fields.nth(3)?;
    let wanted = perms.len() == 4
        && perms[0] == b'r'
        && perms[1] == b'-'
        && perms[3] == b'p'
        && path.starts_with('/');
    let (start, end) = range.split_once('-')?;
    let start = u64::from_str_radix(start, 16).ok()?;
    let end = u64::from_str_radix(end, 16).ok()?;
    (wanted && end > start).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests that register this process's mappings take turns: each checks the mappings it
    /// made, which the other's registration must not have taken first.
    static REGISTERING: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn picks_read_only_private_file_mappings_and_their_private_copies() {
        let smaps = "\
5651410e9000-5651410ea000 r--p 00000000 fe:00 123 /usr/bin/pi-mcp
Size:                  4 kB
Anonymous:             0 kB
VmFlags: rd mr mw me
5651410ea000-5651410f0000 r-xp 00001000 fe:00 123 /usr/bin/pi-mcp
Anonymous:             0 kB
5651410f0000-5651410f1000 r--p 00007000 fe:00 123 /usr/bin/pi-mcp
Anonymous:             4 kB
5651410f1000-5651410f2000 rw-p 00008000 fe:00 123 /usr/bin/pi-mcp
Anonymous:             4 kB
56516d097000-56516d0db000 rw-p 00000000 00:00 0 [heap]
7fa2c9b7d000-7fa2c9b7e000 ---p 00000000 00:00 0
7fa2cb483000-7fa2cb485000 r-xp 00000000 00:00 0 [vdso]
7fa2cb500000-7fa2cb600000 r--s 00000000 fe:00 9 /dev/shm/x
7fa2cb600000-7fa2cb700000 r-xp 00000000 fe:00 7 /usr/lib/libc.so.6
";
        let got: Vec<_> = read_only_file_mappings(smaps)
            .map(|m| (m.start, m.end, m.anonymous_kib))
            .collect();
        assert_eq!(
            got,
            vec![
                (0x5651410e9000, 0x5651410ea000, 0),
                (0x5651410ea000, 0x5651410f0000, 0),
                (0x5651410f0000, 0x5651410f1000, 4),
                // No `Anonymous` line: taken as holding private copies, so kept.
                (0x7fa2cb600000, 0x7fa2cb700000, u64::MAX),
            ]
        );
    }

    #[test]
    fn pages_held_are_let_go_but_private_copies_are_kept() {
        let _turn = REGISTERING.lock().unwrap_or_else(|e| e.into_inner());
        const LEN: usize = 16 * 4096;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pages");
        std::fs::write(&path, vec![7u8; LEN]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let map = |prot| {
            // SAFETY: a new private mapping of an open file, unmapped below; nothing else
            // refers to it.
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    LEN,
                    prot,
                    libc::MAP_PRIVATE,
                    std::os::fd::AsRawFd::as_raw_fd(&file),
                    0,
                )
            };
            assert_ne!(base, libc::MAP_FAILED);
            base
        };
        // Read-only, one page touched: resident before, let go after.
        let clean = map(libc::PROT_READ);
        // SAFETY: page 3 lies inside the readable mapping made above.
        assert_eq!(
            unsafe { std::ptr::read_volatile(clean.cast::<u8>().add(3 * 4096)) },
            7
        );
        // A private copy written, then made read-only, as the loader does with relocated data.
        let copied = map(libc::PROT_READ | libc::PROT_WRITE);
        // SAFETY: page 5 lies inside the writable private mapping made above; then the mapping
        // is made read-only, as a whole.
        unsafe {
            std::ptr::write_volatile(copied.cast::<u8>().add(5 * 4096), 42);
            assert_eq!(libc::mprotect(copied, LEN, libc::PROT_READ), 0);
        }
        let before = rss_kib(clean as u64);
        let outcome = map_on_touch();
        let after = rss_kib(clean as u64);
        // SAFETY: page 5 lies inside the readable mapping made above.
        let written = unsafe { std::ptr::read_volatile(copied.cast::<u8>().add(5 * 4096)) };
        // SAFETY: both ranges are the mappings made above, no longer used.
        unsafe {
            libc::munmap(clean, LEN);
            libc::munmap(copied, LEN);
        }
        assert_eq!(written, 42, "the private copy survives");
        match outcome {
            Ok(done) => {
                assert!(done.released > 0 && done.registered >= done.released);
                assert!(before.is_some_and(|kib| kib > 0), "{before:?}");
                assert_eq!(after, Some(0), "let go");
            }
            Err(e) => eprintln!("not checked, the kernel refuses: {e}"),
        }
    }

    #[test]
    fn a_touched_page_is_mapped_alone() {
        let _turn = REGISTERING.lock().unwrap_or_else(|e| e.into_inner());
        const PAGES: usize = 64;
        const LEN: usize = PAGES * 4096;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pages");
        std::fs::write(&path, vec![7u8; LEN]).unwrap();
        // In the page cache: fault-around maps cached pages only.
        assert_eq!(std::fs::read(&path).unwrap().len(), LEN);
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: a new private read-only mapping of an open file, unmapped below; nothing
        // else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let outcome = map_on_touch();
        // SAFETY: page 32 lies inside the readable mapping made above.
        let byte = unsafe { std::ptr::read_volatile(base.cast::<u8>().add(32 * 4096)) };
        assert_eq!(byte, 7);
        let rss = rss_kib(base as u64);
        // SAFETY: `base..base + LEN` is the mapping made above, no longer used.
        unsafe { libc::munmap(base, LEN) };
        match outcome {
            // Without the registration the kernel maps 16 pages (64 KiB) here.
            Ok(done) => {
                assert!(done.registered > 0);
                assert_eq!(rss, Some(4), "one touched page, one page resident");
            }
            Err(e) => eprintln!("not checked, the kernel refuses: {e}"),
        }
    }

    /// `Rss` of the mapping that starts at `start`, from `/proc/self/smaps`.
    fn rss_kib(start: u64) -> Option<u64> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let head = format!("{start:x}-");
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&head));
        lines
            .find_map(|l| l.strip_prefix("Rss:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}
