/*
 * make_small_env.c - build the small LMDB environment that docs/format.md
 * dissects byte by byte.
 *
 * Build and run (Debian/Ubuntu: apt-get install liblmdb-dev lmdb-utils):
 *
 *   gcc -O0 -Wall -o /tmp/make_small_env docs/examples/make_small_env.c -llmdb
 *   /tmp/make_small_env /tmp/small-env
 *   xxd -a /tmp/small-env/data.mdb
 *
 * The program refuses to reuse a directory that already holds data.mdb so
 * that the result is always the same.  It writes:
 *
 *   DIR/data.mdb              the environment (2 commits, deterministic bytes)
 *   DIR/lock.mdb              the lock file as left after close
 *   DIR/lock-while-reading    a copy of lock.mdb taken while a read
 *                             transaction was open (one reader slot in use)
 *
 * Contents, transaction by transaction:
 *
 * txn 1
 *   main DB (unnamed):  "apple"  -> "red"
 *                       "banana" -> "yellow"
 *                       "cherry" -> "dark red"
 *                       "big"    -> 5000 bytes (goes to an overflow run)
 *   "dups"  (MDB_DUPSORT):
 *                       "few"    -> "x", "y", "z"          (stays a sub-page)
 *                       "many"   -> "dup-value-000000" .. "dup-value-000099"
 *                                   (100 x 16 bytes: becomes a sub-database)
 *   "fixed" (MDB_INTEGERKEY|MDB_DUPSORT|MDB_DUPFIXED|MDB_INTEGERDUP),
 *           keys and values are native uint32_t:
 *                       7        -> 10, 20, 30              (LEAF2 sub-page)
 *                       1000     -> 0 .. 599                (LEAF2 sub-database)
 * txn 2
 *   main DB: delete "banana"  (so the free-page DB gets its first record)
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK(expr) do { int rc_ = (expr); if (rc_) { \
    fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, \
            mdb_strerror(rc_)); exit(1); } } while (0)

static void put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t ks,
                const void *v, size_t vs)
{
    MDB_val key = { ks, (void *)k }, val = { vs, (void *)v };
    CHECK(mdb_put(txn, dbi, &key, &val, 0));
}

static void puts_(MDB_txn *txn, MDB_dbi dbi, const char *k, const char *v)
{
    put(txn, dbi, k, strlen(k), v, strlen(v));
}

static void copy_file(const char *from, const char *to)
{
    char buf[65536];
    ssize_t n;
    int in = open(from, O_RDONLY), out;
    if (in < 0) { perror(from); exit(1); }
    out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0) { perror(to); exit(1); }
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, n) != n) { perror(to); exit(1); }
    close(in);
    close(out);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "small-env";
    char path[4096];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi main_dbi, dups, fixed;
    static char big[5000];
    char v[32];
    uint32_t k32, v32;
    int i;

    if (mkdir(dir, 0755) && errno != EEXIST) { perror(dir); return 1; }
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "%s already exists; use an empty directory\n", path);
        return 1;
    }

    CHECK(mdb_env_create(&env));
    CHECK(mdb_env_set_maxdbs(env, 4));
    CHECK(mdb_env_set_mapsize(env, 1 << 20));      /* 1 MiB */
    CHECK(mdb_env_open(env, dir, 0, 0644));

    /* ---- txn 1 ---- */
    CHECK(mdb_txn_begin(env, NULL, 0, &txn));
    CHECK(mdb_dbi_open(txn, NULL, 0, &main_dbi));
    puts_(txn, main_dbi, "apple", "red");
    puts_(txn, main_dbi, "banana", "yellow");
    puts_(txn, main_dbi, "cherry", "dark red");
    for (i = 0; i < (int)sizeof big; i++)
        big[i] = "0123456789abcdef"[i % 16];
    put(txn, main_dbi, "big", 3, big, sizeof big);

    CHECK(mdb_dbi_open(txn, "dups", MDB_CREATE | MDB_DUPSORT, &dups));
    puts_(txn, dups, "few", "x");
    puts_(txn, dups, "few", "y");
    puts_(txn, dups, "few", "z");
    for (i = 0; i < 100; i++) {
        snprintf(v, sizeof v, "dup-value-%06d", i);
        puts_(txn, dups, "many", v);
    }

    CHECK(mdb_dbi_open(txn, "fixed", MDB_CREATE | MDB_INTEGERKEY |
                       MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP, &fixed));
    k32 = 7;
    for (v32 = 10; v32 <= 30; v32 += 10)
        put(txn, fixed, &k32, 4, &v32, 4);
    k32 = 1000;
    for (v32 = 0; v32 < 600; v32++)
        put(txn, fixed, &k32, 4, &v32, 4);
    CHECK(mdb_txn_commit(txn));

    /* ---- txn 2 ---- */
    CHECK(mdb_txn_begin(env, NULL, 0, &txn));
    {
        MDB_val key = { 6, "banana" };
        CHECK(mdb_del(txn, main_dbi, &key, NULL));
    }
    CHECK(mdb_txn_commit(txn));

    /* Snapshot the lock file while one read transaction is live. */
    CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
    {
        char to[4096];
        snprintf(path, sizeof path, "%s/lock.mdb", dir);
        snprintf(to, sizeof to, "%s/lock-while-reading", dir);
        copy_file(path, to);
    }
    mdb_txn_abort(txn);

    mdb_env_close(env);
    printf("wrote %s/data.mdb, %s/lock.mdb, %s/lock-while-reading\n",
           dir, dir, dir);
    return 0;
}
