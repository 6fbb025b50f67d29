//! Flag constants of C LMDB 0.9.24, as raw `u32` values (re-exported from the
//! bindings, so they are exactly C's).

/// Environment flags (`mdb_env_open`, `mdb_env_set_flags`).
pub mod env {
    pub use crate::ffi::{
        MDB_FIXEDMAP, MDB_MAPASYNC, MDB_NOLOCK, MDB_NOMEMINIT, MDB_NOMETASYNC, MDB_NORDAHEAD,
        MDB_NOSUBDIR, MDB_NOSYNC, MDB_NOTLS, MDB_RDONLY, MDB_WRITEMAP,
    };
}

/// Database flags (`mdb_dbi_open`).
pub mod db {
    pub use crate::ffi::{
        MDB_CREATE, MDB_DUPFIXED, MDB_DUPSORT, MDB_INTEGERDUP, MDB_INTEGERKEY, MDB_REVERSEDUP,
        MDB_REVERSEKEY,
    };
}

/// Write flags (`mdb_put`, `mdb_cursor_put`, `mdb_cursor_del`).
pub mod put {
    pub use crate::ffi::{
        MDB_APPEND, MDB_APPENDDUP, MDB_CURRENT, MDB_MULTIPLE, MDB_NODUPDATA, MDB_NOOVERWRITE,
        MDB_RESERVE,
    };
}

/// Copy flags (`mdb_env_copy2`).
pub mod copy {
    pub use crate::ffi::MDB_CP_COMPACT;
}

pub use self::copy::*;
pub use self::db::*;
pub use self::env::*;
pub use self::put::*;
