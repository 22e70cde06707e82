//! The raw-syscall floor: exactly the syscalls a staging lock needs, nothing else.

use super::*;

pub struct RawDir {
    fd: std::fs::File,
    name: Vec<u8>,
    state: u64,
}

impl RawDir {
    pub fn open(path: &Path) -> RawDir {
        RawDir {
            fd: std::fs::File::open(path).unwrap(),
            name: Vec::with_capacity(32),
            state: 0x9e3779b97f4a7c15,
        }
    }

    fn next_name(&mut self) -> *const libc::c_char {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.name.clear();
        write!(self.name, "lock-{}\0", self.state as u32).unwrap();
        self.name.as_ptr().cast()
    }

    /// openat(O_EXCL) + lock + unlinkat + close; `ofd` picks F_OFD_SETLK, else flock.
    pub fn create_lock_delete(&mut self, ofd: bool) {
        let name = self.next_name();
        let dir = self.fd.as_raw_fd();
        // SAFETY: `name` is NUL-terminated and lives in `self.name` across the calls; `lock`
        // is a valid flock struct; every descriptor used is open.
        unsafe {
            let fd = libc::openat(
                dir,
                name,
                libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                0o600,
            );
            assert!(fd >= 0);
            lock(fd, ofd);
            assert_eq!(libc::unlinkat(dir, name, 0), 0);
            libc::close(fd);
        }
    }

    /// openat(O_CREAT | O_NOFOLLOW) of a fixed name: the descriptor.
    fn open_fixed(&self, name: &CString) -> libc::c_int {
        // SAFETY: `name` is NUL-terminated; the directory descriptor is open.
        let fd = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o644,
            )
        };
        assert!(fd >= 0);
        fd
    }

    /// openat(O_CREAT) + lock + unlinkat + close on a fixed name.
    pub fn open_lock_delete(&mut self, name: &CString) {
        let fd = self.open_fixed(name);
        // SAFETY: `fd` was just opened; `name` is NUL-terminated.
        unsafe {
            lock(fd, true);
            assert_eq!(libc::unlinkat(self.fd.as_raw_fd(), name.as_ptr(), 0), 0);
            libc::close(fd);
        }
    }

    /// openat + a refused lock + close.
    pub fn open_refused(&mut self, name: &CString) {
        let fd = self.open_fixed(name);
        // SAFETY: `fd` was just opened; `l` is a valid flock struct.
        unsafe {
            let mut l: libc::flock = std::mem::zeroed();
            l.l_type = libc::F_WRLCK as _;
            assert_eq!(libc::fcntl(fd, libc::F_OFD_SETLK, &mut l), -1);
            libc::close(fd);
        }
    }
}

/// SAFETY (caller): `fd` is open.
unsafe fn lock(fd: libc::c_int, ofd: bool) {
    // SAFETY: `l` is a valid flock struct; `fd` is open (caller).
    unsafe {
        if ofd {
            let mut l: libc::flock = std::mem::zeroed();
            l.l_type = libc::F_WRLCK as _;
            assert_eq!(libc::fcntl(fd, libc::F_OFD_SETLK, &mut l), 0);
        } else {
            assert_eq!(libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB), 0);
        }
    }
}
