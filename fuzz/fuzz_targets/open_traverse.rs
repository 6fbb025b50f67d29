//! Opens the input as a data file (through a byte-slice page source, no
//! file system) and reads everything reachable from it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    prunedb_fuzz::open_traverse(data);
});
