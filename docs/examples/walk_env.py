#!/usr/bin/env python3
"""walk_env.py - a from-scratch reader for LMDB 0.9 data files (64-bit LE).

Written from docs/format.md only; it exists to check that document against
real files.  It prints both metas, picks the current one, and walks the free
DB, the main DB, every named DB and every dup sub-page / sub-DB, listing each
page it touches.

    python3 docs/examples/walk_env.py [-v] /tmp/small-env/data.mdb

Long pages are abbreviated to their first and last entries unless -v is given.
"""
import struct
import sys

P_BRANCH, P_LEAF, P_OVERFLOW, P_META = 0x01, 0x02, 0x04, 0x08
P_DIRTY, P_LEAF2, P_SUBP = 0x10, 0x20, 0x40
F_BIGDATA, F_SUBDATA, F_DUPDATA = 0x01, 0x02, 0x04
PAGEHDRSZ = 16
P_INVALID = 0xFFFFFFFFFFFFFFFF

DB_FMT = "<IHHQQQQQ"          # MDB_db, 48 bytes
DB_FIELDS = ("pad", "flags", "depth", "branch_pages", "leaf_pages",
             "overflow_pages", "entries", "root")


def parse_db(buf, off):
    return dict(zip(DB_FIELDS, struct.unpack_from(DB_FMT, buf, off)))


def page_header(buf, off):
    pgno, pad, flags, lower, upper = struct.unpack_from("<QHHHH", buf, off)
    pages = struct.unpack_from("<I", buf, off + 12)[0]
    return pgno, pad, flags, lower, upper, pages


class Env:
    def __init__(self, data):
        self.data = data
        # The page size is stored in meta 0 (FREE_DBI record's pad field).
        self.psize = struct.unpack_from("<I", data, PAGEHDRSZ + 24)[0]
        self.metas = [self.read_meta(i) for i in (0, 1)]
        # Larger txnid wins; on a tie meta 0 wins.
        self.meta = self.metas[1] if self.metas[1]["txnid"] > self.metas[0]["txnid"] else self.metas[0]
        self.seen = {}

    def read_meta(self, i):
        off = i * self.psize
        pgno, _, flags, _, _, _ = page_header(self.data, off)
        assert flags & P_META, "page %d is not a meta page" % i
        m = off + PAGEHDRSZ
        magic, version, address, mapsize = struct.unpack_from("<IIQQ", self.data, m)
        assert magic == 0xBEEFC0DE and version == 1
        free = parse_db(self.data, m + 24)
        main = parse_db(self.data, m + 72)
        last_pg, txnid = struct.unpack_from("<QQ", self.data, m + 120)
        return dict(pgno=pgno, magic=magic, version=version, address=address,
                    mapsize=mapsize, psize=free["pad"], env_flags=free["flags"],
                    free=free, main=main, last_pg=last_pg, txnid=txnid)

    def page(self, pgno):
        return pgno * self.psize

    def mark(self, pgno, what, n=1):
        for p in range(pgno, pgno + n):
            assert p not in self.seen, "page %d reached twice" % p
            self.seen[p] = what

    # --- generic B+tree walk -------------------------------------------
    def walk(self, db, name, visit, out):
        if db["root"] == P_INVALID:
            out.append("  %s: empty" % name)
            return
        self._walk(db["root"], db, name, visit, out, 0)

    def _walk(self, pgno, db, name, visit, out, level):
        off = self.page(pgno)
        hpgno, pad, flags, lower, upper, _ = page_header(self.data, off)
        assert hpgno == pgno, "page %d header says %d" % (pgno, hpgno)
        n = (lower - PAGEHDRSZ) // 2
        kind = "branch" if flags & P_BRANCH else ("leaf2" if flags & P_LEAF2 else "leaf")
        self.mark(pgno, "%s %s" % (name, kind))
        out.append("%s  page %d: %s flags=0x%04x nkeys=%d lower=%d upper=%d free=%d"
                   % ("  " * level, pgno, kind, flags, n, lower, upper, upper - lower))
        show = shown(n) if not flags & P_BRANCH else list(range(n))
        for i in range(n):
            if None in show and i == show[show.index(None) + 1]:
                out.append("%s    ..." % ("  " * level))
            hide = i not in show
            out.mute += hide
            if flags & P_LEAF2:
                k = self.data[off + PAGEHDRSZ + i * pad: off + PAGEHDRSZ + (i + 1) * pad]
                visit(k, None, None, level + 1)
                out.mute -= hide
                continue
            ptr = struct.unpack_from("<H", self.data, off + PAGEHDRSZ + 2 * i)[0]
            node = off + ptr
            assert ptr % 2 == 0, "odd node offset"
            lo, hi, nflags, ksize = struct.unpack_from("<HHHH", self.data, node)
            key = self.data[node + 8: node + 8 + ksize]
            if flags & P_BRANCH:
                child = lo | (hi << 16) | (nflags << 32)
                out.append("%s    [%d] -> page %d key=%r" % ("  " * level, i, child, key))
                self._walk(child, db, name, visit, out, level + 1)
            else:
                dsize = lo | (hi << 16)
                dat = node + 8 + ksize
                visit(key, (nflags, dsize, dat), None, level + 1)
            out.mute -= hide

    def value(self, nflags, dsize, dat, name):
        if nflags & F_BIGDATA:
            ov = struct.unpack_from("<Q", self.data, dat)[0]
            _, _, f, _, _, pages = page_header(self.data, self.page(ov))
            assert f & P_OVERFLOW
            self.mark(ov, "%s overflow" % name, pages)
            start = self.page(ov) + PAGEHDRSZ
            return self.data[start:start + dsize], "overflow pgno=%d pages=%d" % (ov, pages)
        return self.data[dat:dat + dsize], None


VERBOSE = False


def shown(n, head=3, tail=2):
    """Indexes to print: all with -v, else the first and last few."""
    if VERBOSE or n <= head + tail + 1:
        return list(range(n))
    return list(range(head)) + [None] + list(range(n - tail, n))


class Output(list):
    """A list of output lines that can be muted while abbreviating."""
    mute = 0

    def append(self, line):
        if not self.mute:
            list.append(self, line)


def short(b, n=24):
    return repr(b if len(b) <= n else b[:n] + b"...")


def main():
    global VERBOSE
    args = sys.argv[1:]
    if args and args[0] == "-v":
        VERBOSE = True
        args = args[1:]
    env = Env(open(args[0], "rb").read())
    for i, m in enumerate(env.metas):
        print("meta %d: txnid=%d last_pg=%d mapsize=%d psize=%d env_flags=0x%x"
              % (i, m["txnid"], m["last_pg"], m["mapsize"], m["psize"], m["env_flags"]))
        print("   free:", m["free"])
        print("   main:", m["main"])
    cur = env.meta
    print("current meta: page %d (txnid %d)" % (cur["txnid"] & 1, cur["txnid"]))
    env.mark(0, "meta")
    env.mark(1, "meta")
    out = Output()
    freed = []

    def free_visit(key, nd, _x, level):
        nflags, dsize, dat = nd
        txnid = struct.unpack("<Q", key)[0]
        val, how = env.value(nflags, dsize, dat, "free")
        count = struct.unpack_from("<Q", val, 0)[0]
        pgs = list(struct.unpack_from("<%dQ" % count, val, 8))
        assert pgs == sorted(pgs, reverse=True), "IDL not descending"
        freed.extend(pgs)
        out.append("%s    txn %d freed %s%s" % ("  " * level, txnid, pgs,
                                                 " (" + how + ")" if how else ""))

    out.append("FREE_DBI:")
    env.walk(cur["free"], "free", free_visit, out)

    named = []

    def dup_walk(key, nflags, dsize, dat, name, level):
        if nflags & F_SUBDATA:
            sub = parse_db(env.data, dat)
            out.append("%s    %s: dup sub-DB %s" % ("  " * level, short(key), sub))
            env.walk(sub, name + "/" + repr(key), lambda k, nd, x, lv:
                     out.append("%s    dup %s" % ("  " * lv, short(k))), out)
        else:
            sp = dat
            spg, pad, sflags, lower, upper, _ = page_header(env.data, sp)
            n = (lower - PAGEHDRSZ) // 2
            out.append("%s    %s: sub-page size=%d flags=0x%02x pgno-field=%d pad=%d n=%d lower=%d upper=%d"
                       % ("  " * level, short(key), dsize, sflags, spg, pad, n, lower, upper))
            for i in shown(n):
                if i is None:
                    out.append("%s      ..." % ("  " * level))
                    continue
                if sflags & P_LEAF2:
                    d = env.data[sp + PAGEHDRSZ + i * pad: sp + PAGEHDRSZ + (i + 1) * pad]
                else:
                    ptr = struct.unpack_from("<H", env.data, sp + PAGEHDRSZ + 2 * i)[0]
                    lo, hi, _, ks = struct.unpack_from("<HHHH", env.data, sp + ptr)
                    d = env.data[sp + ptr + 8: sp + ptr + 8 + ks]
                out.append("%s      dup %s" % ("  " * level, short(d)))

    def make_visit(name):
        def visit(key, nd, _x, level):
            nflags, dsize, dat = nd
            if name == "main" and nflags == F_SUBDATA:
                named.append((key, parse_db(env.data, dat)))
                out.append("%s    %s -> named DB record" % ("  " * level, short(key)))
            elif nflags & F_DUPDATA:
                dup_walk(key, nflags, dsize, dat, name, level)
            else:
                val, how = env.value(nflags, dsize, dat, name)
                out.append("%s    %s -> %s%s" % ("  " * level, short(key), short(val),
                                                 " (" + how + ")" if how else ""))
        return visit

    out.append("MAIN_DBI:")
    env.walk(cur["main"], "main", make_visit("main"), out)
    for key, db in named:
        out.append("named DB %r: %s" % (key, db))
        env.walk(db, key.decode(errors="replace"), make_visit(key.decode(errors="replace")), out)
    for p in freed:
        env.mark(p, "free list")
    print("\n".join(out))
    missing = [p for p in range(cur["last_pg"] + 1) if p not in env.seen]
    print("pages 0..%d: %d reached, unaccounted: %s"
          % (cur["last_pg"], len(env.seen), missing or "none"))


if __name__ == "__main__":
    main()
