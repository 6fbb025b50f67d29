//! Opens the input as the data file of an environment on disk (plain, then
//! `WRITEMAP`) and writes to it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // One directory per fuzzing process, reused by every input.
    let dir = std::env::temp_dir().join(format!("prunedb-fuzz-write-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("fuzz directory");
    prunedb_fuzz::write_damaged(data, &dir);
});
