//! A small tmpfs mounted for one sequence and unmounted when dropped, even on failure
//! (lazily if still busy), and a ballast file that fills it to within a chosen size.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

/// A tmpfs mounted on a temporary directory.
pub struct Tmpfs {
    mount_point: tempfile::TempDir,
}

impl Tmpfs {
    /// A tmpfs of `mib` MiB, or why the machine refused to mount one (not root, no
    /// `CAP_SYS_ADMIN`, no `mount`).
    pub fn mount(mib: u64) -> Result<Self, String> {
        let mount_point = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(mount_point.path())
            .output()
            .map_err(|e| format!("cannot run `mount`: {e}"))?;
        if !mounted.status.success() {
            return Err(format!(
                "`mount -t tmpfs` failed ({}): {}",
                mounted.status,
                String::from_utf8_lossy(&mounted.stderr).trim()
            ));
        }
        Ok(Self { mount_point })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.mount_point.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(self.path()).status();
        if !unmounted.is_ok_and(|status| status.success()) {
            // Busy (a server that would not die): detach it now, freed once let go.
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}

/// A file that takes all but a few bytes of its filesystem's free space.
pub struct Ballast {
    path: PathBuf,
}

impl Ballast {
    /// Writes `path` until its filesystem is full, then gives `leave` bytes back.
    pub fn fill(path: &Path, leave: u64) -> Self {
        let mut file = std::fs::File::create(path).unwrap();
        let chunk = vec![0xA5u8; 1 << 20];
        let mut written: u64 = 0;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(err) if err.raw_os_error() == Some(28) => break,
                Err(err) => panic!("filling {}: {err}", path.display()),
            }
        }
        // tmpfs frees the pages of a truncated file at once.
        file.set_len(written.saturating_sub(leave)).unwrap();
        Self {
            path: path.to_owned(),
        }
    }

    /// Deletes the ballast: the filesystem has room again.
    pub fn remove(self) {
        std::fs::remove_file(&self.path).unwrap();
    }
}
