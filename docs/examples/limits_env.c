/*
 * limits_env.c - build an environment that sits exactly on LMDB's size
 * thresholds, used to check the limits stated in docs/format.md.
 *
 *   gcc -O0 -Wall -o /tmp/limits_env docs/examples/limits_env.c -llmdb
 *   /tmp/limits_env /tmp/limits-env
 *   python3 docs/examples/walk_env.py /tmp/limits-env/data.mdb
 *
 * Page size 4096 (the Linux default) is assumed by the comments below.
 */
#include <errno.h>
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

static int put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t ks,
               const void *v, size_t vs)
{
    MDB_val key = { ks, (void *)k }, val = { vs, (void *)v };
    return mdb_put(txn, dbi, &key, &val, 0);
}

static void fill_dups(MDB_txn *txn, MDB_dbi dbi, const char *key, int n)
{
    char v[32];
    int i;
    for (i = 0; i < n; i++) {
        snprintf(v, sizeof v, "dup-value-%06d", i);   /* 16 bytes */
        CHECK(put(txn, dbi, key, strlen(key), v, 16));
    }
}

static void fill_fixed(MDB_txn *txn, MDB_dbi dbi, const char *key, int n)
{
    uint32_t i;
    for (i = 0; i < (uint32_t)n; i++)
        CHECK(put(txn, dbi, key, strlen(key), &i, 4));
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "limits-env";
    static char buf[8192], key512[512];
    char path[4096], k[16];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi m, dups, fixed, rev, intk, revdup, deep, shrink;
    MDB_val key, val;
    uint64_t k64[] = { 65536, 1, (uint64_t)1 << 40, 256 };
    int i, rc;

    if (mkdir(dir, 0755) && errno != EEXIST) { perror(dir); return 1; }
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "%s already exists; use an empty directory\n", path);
        return 1;
    }
    memset(buf, 'v', sizeof buf);
    memset(key512, 'K', sizeof key512);

    CHECK(mdb_env_create(&env));
    CHECK(mdb_env_set_maxdbs(env, 16));
    CHECK(mdb_env_set_mapsize(env, 16 << 20));
    CHECK(mdb_env_open(env, dir, 0, 0644));
    printf("mdb_env_get_maxkeysize = %d\n", mdb_env_get_maxkeysize(env));

    CHECK(mdb_txn_begin(env, NULL, 0, &txn));
    CHECK(mdb_dbi_open(txn, NULL, 0, &m));
    /* node = 8 + ksize + dsize; inline while <= 2038 */
    CHECK(put(txn, m, "a", 1, buf, 2029));     /* 2038: inline        */
    CHECK(put(txn, m, "b", 1, buf, 2030));     /* 2039: overflow, 1pg */
    CHECK(put(txn, m, "c", 1, buf, 4080));     /* 16+4080 = 1 page    */
    CHECK(put(txn, m, "d", 1, buf, 4081));     /* 2 pages             */
    CHECK(put(txn, m, key512, 511, "x", 1));   /* longest legal key   */
    rc = put(txn, m, key512, 512, "x", 1);
    printf("put with 512-byte key: %s\n", mdb_strerror(rc));
    rc = put(txn, m, "", 0, "x", 1);
    printf("put with empty key: %s\n", mdb_strerror(rc));

    CHECK(mdb_dbi_open(txn, "dups", MDB_CREATE | MDB_DUPSORT, &dups));
    fill_dups(txn, dups, "p", 77);             /* stays a sub-page   */
    fill_dups(txn, dups, "q", 78);             /* becomes a sub-DB   */
    for (i = 1; i <= 6; i++) {                 /* sub-page growth    */
        char kk[8];
        snprintf(kk, sizeof kk, "g%d", i);
        fill_dups(txn, dups, kk, i);
    }
    rc = put(txn, dups, "big", 3, buf, 512);
    printf("DUPSORT put with 512-byte value: %s\n", mdb_strerror(rc));
    CHECK(put(txn, dups, "big", 3, buf, 511));

    CHECK(mdb_dbi_open(txn, "fixed", MDB_CREATE | MDB_DUPSORT |
                       MDB_DUPFIXED, &fixed));
    fill_fixed(txn, fixed, "p", 500);          /* stays a sub-page   */
    fill_fixed(txn, fixed, "q", 501);          /* becomes a sub-DB   */
    for (i = 1; i <= 9; i++) {                 /* LEAF2 growth       */
        char kk[8];
        snprintf(kk, sizeof kk, "g%d", i);
        fill_fixed(txn, fixed, kk, i);
    }

    CHECK(mdb_dbi_open(txn, "rev", MDB_CREATE | MDB_REVERSEKEY, &rev));
    CHECK(put(txn, rev, "ab", 2, "1", 1));
    CHECK(put(txn, rev, "ba", 2, "2", 1));
    CHECK(put(txn, rev, "b", 1, "3", 1));
    CHECK(put(txn, rev, "ca", 2, "4", 1));
    CHECK(put(txn, rev, "a", 1, "5", 1));
    CHECK(put(txn, rev, "xa", 2, "6", 1));

    CHECK(mdb_dbi_open(txn, "int", MDB_CREATE | MDB_INTEGERKEY, &intk));
    for (i = 0; i < 4; i++)
        CHECK(put(txn, intk, &k64[i], 8, "i", 1));

    CHECK(mdb_dbi_open(txn, "revdup", MDB_CREATE | MDB_DUPSORT |
                       MDB_REVERSEDUP, &revdup));
    CHECK(put(txn, revdup, "k", 1, "ab", 2));
    CHECK(put(txn, revdup, "k", 1, "ba", 2));
    CHECK(put(txn, revdup, "k", 1, "b", 1));

    CHECK(mdb_dbi_open(txn, "deep", MDB_CREATE, &deep));
    for (i = 0; i < 3000; i++) {
        snprintf(k, sizeof k, "key%06d", i);
        CHECK(put(txn, deep, k, strlen(k), buf, 40));
    }

    CHECK(mdb_dbi_open(txn, "shrink", MDB_CREATE | MDB_DUPSORT, &shrink));
    fill_dups(txn, shrink, "subpage", 3);
    fill_dups(txn, shrink, "subdb", 100);
    CHECK(mdb_txn_commit(txn));

    /* txn 2: free many pages, shrink dup sets down to one value */
    CHECK(mdb_txn_begin(env, NULL, 0, &txn));
    for (i = 0; i < 3000; i += 2) {
        snprintf(k, sizeof k, "key%06d", i);
        key.mv_size = strlen(k); key.mv_data = k;
        CHECK(mdb_del(txn, deep, &key, NULL));
    }
    for (i = 1; i < 3; i++) {
        char v[32];
        snprintf(v, sizeof v, "dup-value-%06d", i);
        key.mv_size = 7; key.mv_data = "subpage";
        val.mv_size = 16; val.mv_data = v;
        CHECK(mdb_del(txn, shrink, &key, &val));
    }
    for (i = 1; i < 100; i++) {
        char v[32];
        snprintf(v, sizeof v, "dup-value-%06d", i);
        key.mv_size = 5; key.mv_data = "subdb";
        val.mv_size = 16; val.mv_data = v;
        CHECK(mdb_del(txn, shrink, &key, &val));
    }
    CHECK(mdb_txn_commit(txn));

    /* txn 3: touch "deep" again so a second free record appears */
    CHECK(mdb_txn_begin(env, NULL, 0, &txn));
    for (i = 1; i < 3000; i += 4) {
        snprintf(k, sizeof k, "key%06d", i);
        key.mv_size = strlen(k); key.mv_data = k;
        CHECK(mdb_del(txn, deep, &key, NULL));
    }
    CHECK(mdb_txn_commit(txn));

    mdb_env_close(env);
    return 0;
}
