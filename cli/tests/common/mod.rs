//! Helpers shared by the CLI's integration tests.

use std::ffi::OsStr;
use std::path::Path;

/// Whether Debian's LMDB tools `tools` are installed in /usr/bin; panics
/// with how to get them unless skipping was asked for.
pub fn have_tools(tools: &[&str]) -> bool {
    if tools.iter().all(|t| Path::new("/usr/bin").join(t).exists()) {
        return true;
    }
    if std::env::var_os("PRUNEDB_SKIP_LMDB_UTILS").as_deref() == Some(OsStr::new("1")) {
        eprintln!("skipping: LMDB tools missing and PRUNEDB_SKIP_LMDB_UTILS=1");
        return false;
    }
    panic!(
        "one of /usr/bin/{} is missing: install them with `apt-get install -y lmdb-utils` \
         (or set PRUNEDB_SKIP_LMDB_UTILS=1 to skip)",
        tools.join(", ")
    );
}

/// A temporary directory, on tmpfs where there is one: the C tools and
/// the generator sync every commit, which costs seconds on a disk.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::Builder::new()
            .prefix("prunedb-cli")
            .tempdir_in(shm)
        {
            return d;
        }
    }
    tempfile::tempdir().expect("temporary directory")
}
