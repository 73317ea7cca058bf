/* ledger.c — the SQLite reservations ledger (see ledger.h for the rules).
 *
 * Schema (version 1, in meta.schema_version):
 *   reservations(id PK autoincrement, idem_key UNIQUE, owner, pid, pid_start,
 *                created_ns, expires_ns, lease_ns, note, plan_json)
 *   reservation_devices(reservation_id -> reservations ON DELETE CASCADE,
 *                       pos, uuid, bytes > 0; PK (reservation_id, pos))
 * Every write is one transaction; plan-and-reserve holds the writer lock
 * (BEGIN IMMEDIATE) from reading the live reservations to the commit, which
 * is what makes concurrent planners serialisable. Statements are prepared
 * once per handle.
 *
 * The live rows are read through a mirror (ledger_mirror.h): inside each
 * transaction SQLite's data_version says whether another connection has
 * committed since the mirror was read; if not, the mirror is the database
 * (this handle's own commits are applied to it as they commit; a write
 * that fails invalidates it), else it is read again. A plan then costs the
 * permanent reservations' per-device totals plus the rows that can end by
 * themselves (an owner process or a lease), not every live row.
 */
#include "place/ledger.h"
#include "place/ledger_mirror.h"
#include "core/array.h"

#include <assert.h>
#include "render/json_writer.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    ST_BEGIN_IMM,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_LIVE,
    ST_DEL,
    ST_INS_RES,
    ST_INS_DEV,
    ST_BY_KEY,
    ST_GET,
    ST_GET_DEVS,
    ST_RENEW,
    ST_SET_PID,
    ST_LIST_IDS,
    ST_DATA_VERSION,
    ST_COUNT
};

static const char *const sql_text[ST_COUNT] = {
    [ST_BEGIN_IMM] = "BEGIN IMMEDIATE",
    [ST_BEGIN] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_LIVE] = "SELECT r.id, r.pid, r.pid_start, r.expires_ns, d.uuid, d.bytes "
                "FROM reservations r JOIN reservation_devices d ON d.reservation_id = r.id "
                "ORDER BY r.id",
    [ST_DEL] = "DELETE FROM reservations WHERE id = ?1",
    [ST_INS_RES] = "INSERT INTO reservations(idem_key, owner, pid, pid_start, created_ns, "
                   "expires_ns, lease_ns, note, plan_json) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)",
    [ST_INS_DEV] = "INSERT INTO reservation_devices(reservation_id, pos, uuid, bytes) "
                   "VALUES(?1,?2,?3,?4)",
    [ST_BY_KEY] = "SELECT id FROM reservations WHERE idem_key = ?1",
    [ST_GET] = "SELECT id, idem_key, owner, pid, pid_start, created_ns, expires_ns, lease_ns, "
               "note, plan_json FROM reservations WHERE id = ?1",
    [ST_GET_DEVS] = "SELECT uuid, bytes FROM reservation_devices WHERE reservation_id = ?1 "
                    "ORDER BY pos",
    [ST_RENEW] = "UPDATE reservations SET expires_ns = ?2, lease_ns = ?3 WHERE id = ?1",
    [ST_SET_PID] = "UPDATE reservations SET pid = ?2, pid_start = ?3 WHERE id = ?1",
    [ST_LIST_IDS] = "SELECT id, pid, pid_start, expires_ns FROM reservations ORDER BY id",
    [ST_DATA_VERSION] = "PRAGMA data_version",
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT OR IGNORE INTO meta VALUES('schema_version', '1');"
    "CREATE TABLE IF NOT EXISTS reservations("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  idem_key TEXT UNIQUE,"
    "  owner TEXT,"
    "  pid INTEGER NOT NULL DEFAULT 0,"
    "  pid_start INTEGER NOT NULL DEFAULT 0,"
    "  created_ns INTEGER NOT NULL,"
    "  expires_ns INTEGER NOT NULL DEFAULT 0,"
    "  lease_ns INTEGER NOT NULL DEFAULT 0,"
    "  note TEXT,"
    "  plan_json TEXT);"
    "CREATE TABLE IF NOT EXISTS reservation_devices("
    "  reservation_id INTEGER NOT NULL REFERENCES reservations(id) ON DELETE CASCADE,"
    "  pos INTEGER NOT NULL,"
    "  uuid TEXT NOT NULL,"
    "  bytes INTEGER NOT NULL CHECK(bytes > 0),"
    "  PRIMARY KEY(reservation_id, pos)) WITHOUT ROWID;";

struct gw_ledger {
    sqlite3 *db; /* NULL: read-only open of a missing file (empty ledger) */
    sqlite3_stmt *st[ST_COUNT];
    char path[1024];
    char proc_root[512];
    int64_t (*now_ns)(void *);
    void *clock_ctx;
    bool read_only;
    gw__mirror mirror; /* the live rows as of mirror.version (see the header) */
};

void gw_ledger_opts_init(gw_ledger_opts *o) { memset(o, 0, sizeof *o); }

const char *gw_ledger_default_path(char *buf, size_t cap)
{
    const char *e = getenv("GPUWATCH_LEDGER");
    if (e && *e) {
        gw__strlcpy(buf, e, cap);
        return buf;
    }
    if (geteuid() == 0) {
        gw__strlcpy(buf, "/var/lib/gpuwatch/ledger.db", cap);
        return buf;
    }
    const char *xdg = getenv("XDG_STATE_HOME");
    if (xdg && *xdg == '/') {
        snprintf(buf, cap, "%s/gpuwatch/ledger.db", xdg);
        return buf;
    }
    const char *home = getenv("HOME");
    if (home && *home == '/') {
        snprintf(buf, cap, "%s/.local/state/gpuwatch/ledger.db", home);
        return buf;
    }
    return NULL;
}

static int64_t now(const gw_ledger *l)
{
    return l->now_ns ? l->now_ns(l->clock_ctx) : gw__now_real_ns();
}

static int db_error(gw_ledger *l, gw_error *err, const char *what)
{
    int code = sqlite3_extended_errcode(l->db);
    int rc = (code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED ? GW_ETIMEDOUT : GW_EIO;
    return gw__error_set(err, rc, "ledger %s: %s: %s", l->path, what, sqlite3_errmsg(l->db));
}

/* mkdir -p of path's folder. */
static int make_parent(const char *path, gw_error *err)
{
    char dir[1024];
    gw__strlcpy(dir, path, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return GW_OK;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return gw__error_set(err, GW_EIO, "ledger: cannot create folder %s: %s", dir, strerror(errno));
        *p = '/';
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return gw__error_set(err, GW_EIO, "ledger: cannot create folder %s: %s", dir, strerror(errno));
    return GW_OK;
}

void gw_ledger_close(gw_ledger *l)
{
    if (!l)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(l->st[i]);
    sqlite3_close(l->db);
    gw__mirror_release(&l->mirror);
    free(l);
}

/* sqlite3_exec, retried while the database answers SQLITE_BUSY until
 * timeout_ms: some set-up steps (switching a fresh file to WAL, the first
 * write transaction while another opener recovers it) return BUSY without
 * consulting the busy handler, so the busy timeout alone does not cover
 * two processes creating the ledger at once. */
static int exec_busy_retry(sqlite3 *db, const char *sql, unsigned timeout_ms)
{
    int64_t until = gw__now_mono_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if ((rc & 0xff) != SQLITE_BUSY || gw__now_mono_ns() >= until)
            return rc;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int gw_ledger_open(gw_ledger **out, const gw_ledger_opts *o, gw_error *err)
{
    *out = NULL;
    if (!o || !o->path || !*o->path)
        return gw__error_set(err, GW_EINVAL, "ledger: no path given");
    if (strlen(o->path) >= sizeof((gw_ledger *)0)->path)
        return gw__error_set(err, GW_EINVAL, "ledger: path too long: %s", o->path);
    gw_ledger *l = calloc(1, sizeof *l);
    if (!l)
        return gw__error_set(err, GW_ENOMEM, "ledger: out of memory");
    gw__strlcpy(l->path, o->path, sizeof l->path);
    const char *root = o->proc_root && *o->proc_root ? o->proc_root : getenv("GPUWATCH_PROC_ROOT");
    gw__strlcpy(l->proc_root, root && *root ? root : "/proc", sizeof l->proc_root);
    l->now_ns = o->now_ns;
    l->clock_ctx = o->clock_ctx;
    l->read_only = o->read_only;

    if (o->read_only && access(o->path, F_OK) != 0) {
        *out = l; /* an empty ledger */
        return GW_OK;
    }
    if (!o->read_only) {
        int rc = make_parent(o->path, err);
        if (rc) {
            free(l);
            return rc;
        }
    }
    int flags = (o->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(o->path, &l->db, flags, NULL) != SQLITE_OK) {
        int rc = gw__error_set(err, GW_EIO, "ledger %s: cannot open: %s", o->path,
                               l->db ? sqlite3_errmsg(l->db) : "out of memory");
        gw_ledger_close(l);
        return rc;
    }
    unsigned busy_ms = o->busy_timeout_ms ? (unsigned)o->busy_timeout_ms : 10000;
    sqlite3_busy_timeout(l->db, (int)busy_ms);
    char pragmas[160];
    const char *sync_env = getenv("GPUWATCH_LEDGER_SYNC");
    bool full = o->sync_full || (sync_env && strcmp(sync_env, "full") == 0);
    snprintf(pragmas, sizeof pragmas, "PRAGMA foreign_keys=ON; PRAGMA synchronous=%s;",
             full ? "FULL" : "NORMAL");
    if (exec_busy_retry(l->db, pragmas, busy_ms) != SQLITE_OK)
        goto fail;
    if (!o->read_only) {
        /* journal_mode is persistent in the file; setting it may meet a
         * concurrent opener: see exec_busy_retry */
        if (exec_busy_retry(l->db, "PRAGMA journal_mode=WAL", busy_ms) != SQLITE_OK)
            goto fail;
        if (exec_busy_retry(l->db, "BEGIN IMMEDIATE", busy_ms) != SQLITE_OK)
            goto fail;
        if (sqlite3_exec(l->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
            sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
        if (sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            goto fail;
    }
    for (int i = 0; i < ST_COUNT; i++)
        if (sqlite3_prepare_v3(l->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &l->st[i], NULL) !=
            SQLITE_OK) {
            if (o->read_only) {
                /* a file another process has just created and not yet given
                 * its schema is an empty ledger; any other file is an error */
                sqlite3_stmt *q = NULL;
                bool blank = sqlite3_prepare_v2(l->db, "SELECT count(*) FROM sqlite_master", -1, &q,
                                                NULL) == SQLITE_OK &&
                             sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int64(q, 0) == 0;
                sqlite3_finalize(q);
                if (blank) {
                    for (int k = 0; k < ST_COUNT; k++) {
                        sqlite3_finalize(l->st[k]);
                        l->st[k] = NULL;
                    }
                    sqlite3_close(l->db);
                    l->db = NULL;
                    *out = l;
                    return GW_OK;
                }
                int rc = gw__error_set(err, GW_EIO, "ledger %s: not a gpuwatch ledger (%s)",
                                       o->path, sqlite3_errmsg(l->db));
                gw_ledger_close(l);
                return rc;
            }
            goto fail;
        }
    *out = l;
    return GW_OK;
fail:;
    int rc = db_error(l, err, "cannot set up");
    gw_ledger_close(l);
    return rc;
}

/* ------------------------------------------------------------ liveness */

bool gw__ledger_pid_alive(const char *proc_root, uint32_t pid, int64_t *start)
{
    char path[600], buf[1024];
    snprintf(path, sizeof path, "%s/%u/stat", proc_root, pid);
    long n = gw__read_file(path, buf, sizeof buf);
    if (n <= 0)
        return false;
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return false;
    char state = p[2];
    if (state == 'Z' || state == 'X' || state == 'x')
        return false;
    /* fields after ')': 3 state, 4 ppid, ... 22 starttime */
    p += 2;
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p)
            return false;
        p++;
    }
    char *end;
    long long st = strtoll(p, &end, 10);
    if (end == p)
        return false;
    if (start)
        *start = st;
    return true;
}

/* Per-call memo of pid liveness. */
typedef struct pid_memo {
    uint32_t pid;
    int64_t start;
    bool alive;
} pid_memo;

typedef struct judge {
    gw_ledger *l;
    int64_t now;
    pid_memo memo[64];
    size_t n_memo;
} judge;

static bool alive(judge *j, uint32_t pid, int64_t pid_start, int64_t expires_ns)
{
    if (expires_ns != 0 && expires_ns <= j->now)
        return false;
    if (pid == 0)
        return true;
    for (size_t i = 0; i < j->n_memo; i++)
        if (j->memo[i].pid == pid)
            return j->memo[i].alive && (pid_start == 0 || j->memo[i].start == pid_start);
    int64_t start = 0;
    bool a = gw__ledger_pid_alive(j->l->proc_root, pid, &start);
    pid_memo m = {pid, start, a};
    j->memo[j->n_memo < GW__ARRAY_LEN(j->memo) ? j->n_memo++ : GW__ARRAY_LEN(j->memo) - 1] = m;
    return a && (pid_start == 0 || start == pid_start);
}

/* ------------------------------------------------------------ pending */

size_t gw_place_seen_from_snapshot(const gw_snapshot *snap, gw_place_seen *out)
{
    size_t k = 0;
    for (size_t i = 0; i < snap->n_processes; i++) {
        const gw_process *p = &snap->processes[i];
        if (!gw_process_has(p, GW_PROC_GPU_MEMORY) || p->device_index >= snap->n_devices)
            continue;
        out[k].pid = p->pid;
        out[k].device = p->device_index;
        out[k].bytes = p->gpu_memory;
        k++;
    }
    return k;
}

static int find_device(const gw_place_device *devs, size_t n, const char *uuid)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(devs[i].uuid, uuid) == 0)
            return (int)i;
    return -1;
}

static void col_text(sqlite3_stmt *st, int c, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, c);
    gw__strlcpy(dst, t ? (const char *)t : "", cap);
}

/* Makes the mirror the database's live rows: read again unless it is valid
 * and no other connection has committed since. Caller holds a transaction. */
static int mirror_sync(gw_ledger *l, gw_error *err)
{
    sqlite3_stmt *st = l->st[ST_DATA_VERSION];
    int s = sqlite3_step(st);
    int64_t version = s == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_reset(st);
    if (s != SQLITE_ROW)
        return db_error(l, err, "reading the data version");
    gw__mirror *m = &l->mirror;
    if (m->valid && m->version == version)
        return GW_OK;
    gw__mirror_clear(m);
    st = l->st[ST_LIVE];
    int rc = GW_OK;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        gw__mirror_row r = {.id = sqlite3_column_int64(st, 0),
                            .pid = (uint32_t)sqlite3_column_int64(st, 1),
                            .pid_start = sqlite3_column_int64(st, 2),
                            .expires_ns = sqlite3_column_int64(st, 3),
                            .bytes = (uint64_t)sqlite3_column_int64(st, 5)};
        col_text(st, 4, r.uuid, sizeof r.uuid);
        if (gw__mirror_add(m, &r) != GW_OK) {
            rc = gw__error_set(err, GW_ENOMEM, "ledger: out of memory");
            break;
        }
    }
    if (rc == GW_OK && s != SQLITE_DONE)
        rc = db_error(l, err, "reading reservations");
    sqlite3_reset(st);
    if (rc) {
        gw__mirror_clear(m);
        return rc;
    }
    m->valid = true;
    m->version = version;
    return GW_OK;
}

/* Adds bytes to the pending of the device named uuid, when devs has it. */
static void add_pending(gw_place_device *devs, size_t n, const char *uuid, uint64_t bytes)
{
    int d = find_device(devs, n, uuid);
    if (d >= 0 && !gw__add_u64(devs[d].pending, bytes, &devs[d].pending))
        devs[d].pending = UINT64_MAX;
}

/* Walks the live rows (through the mirror): adds pending to devs (when
 * devs), collects dead ids (when dead != NULL). A row with an owner pid has
 * the memory its process is already seen using on that device (seen) taken
 * off, in id order. Caller holds a transaction. */
static int scan(gw_ledger *l, judge *j, gw_place_device *devs, size_t n, const gw_place_seen *seen,
                size_t n_seen, int64_t **dead, size_t *n_dead, gw_error *err)
{
    int rc = mirror_sync(l, err);
    if (rc)
        return rc;
    const gw__mirror *m = &l->mirror;
    assert(gw__mirror_check(m));
    for (size_t i = 0; devs && i < n; i++)
        devs[i].pending = 0;
    for (size_t k = 0; devs && k < m->n_perm; k++)
        if (m->perm[k].bytes)
            add_pending(devs, n, m->perm[k].uuid, m->perm[k].bytes);
    if (m->n_volatile == 0)
        return GW_OK;
    uint64_t seen_small[32];
    uint64_t *left = NULL;
    if (n_seen) {
        left = n_seen <= 32 ? seen_small : malloc(n_seen * sizeof *left);
        if (!left)
            return gw__error_set(err, GW_ENOMEM, "ledger: out of memory");
        for (size_t i = 0; i < n_seen; i++)
            left[i] = seen[i].bytes;
    }
    size_t cap_dead = 0;
    int64_t last_id = -1;
    bool last_alive = false;
    for (size_t i = 0; i < m->n; i++) {
        const gw__mirror_row *r = &m->rows[i];
        if (r->dead || !gw__mirror_row_volatile(r))
            continue;
        if (r->id != last_id) {
            last_id = r->id;
            last_alive = alive(j, r->pid, r->pid_start, r->expires_ns);
            if (!last_alive && dead) {
                if (GW__ARRAY_RESERVE(*dead, cap_dead, *n_dead + 1, GW__ARRAY_UNBOUNDED)) {
                    rc = gw__error_set(err, GW_ENOMEM, "ledger: out of memory");
                    break;
                }
                (*dead)[(*n_dead)++] = r->id;
            }
        }
        if (!last_alive || !devs)
            continue;
        int d = find_device(devs, n, r->uuid);
        if (d < 0)
            continue; /* a device not in this picture */
        uint64_t bytes = r->bytes;
        if (r->pid)
            for (size_t k = 0; k < n_seen && bytes; k++)
                if (seen[k].pid == r->pid && seen[k].device == (uint32_t)d && left[k]) {
                    uint64_t v = left[k] < bytes ? left[k] : bytes;
                    left[k] -= v;
                    bytes -= v;
                }
        if (!gw__add_u64(devs[d].pending, bytes, &devs[d].pending))
            devs[d].pending = UINT64_MAX;
    }
    if (left != seen_small)
        free(left);
    return rc;
}

static int step_done(gw_ledger *l, sqlite3_stmt *st, gw_error *err, const char *what)
{
    int s = sqlite3_step(st);
    int rc = s == SQLITE_DONE || s == SQLITE_ROW ? GW_OK : db_error(l, err, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static void rollback(gw_ledger *l)
{
    if (!sqlite3_get_autocommit(l->db))
        step_done(l, l->st[ST_ROLLBACK], NULL, "rollback");
}

static int need_writable(gw_ledger *l, gw_error *err)
{
    if (l->read_only || !l->db)
        return gw__error_set(err, GW_EPERM, "ledger %s: opened read-only", l->path);
    return GW_OK;
}

int gw_ledger_apply_pending(gw_ledger *l, gw_place_device *devs, size_t n,
                            const gw_place_seen *seen, size_t n_seen, gw_error *err)
{
    for (size_t i = 0; i < n; i++)
        devs[i].pending = 0;
    if (!l->db)
        return GW_OK;
    judge j = {.l = l, .now = now(l)};
    int rc = step_done(l, l->st[ST_BEGIN], err, "begin");
    if (rc)
        return rc;
    rc = scan(l, &j, devs, n, seen, n_seen, NULL, NULL, err);
    rollback(l); /* read transaction: nothing to keep */
    return rc;
}

static int delete_ids(gw_ledger *l, const int64_t *ids, size_t n, gw_error *err)
{
    sqlite3_stmt *st = l->st[ST_DEL];
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(st, 1, ids[i]);
        int rc = step_done(l, st, err, "releasing a dead reservation");
        if (rc)
            return rc;
    }
    return GW_OK;
}

/* ------------------------------------------------------------ reading one */

void gw_reservation_clear(gw_reservation *r)
{
    free(r->devices);
    free(r->plan_json);
    memset(r, 0, sizeof *r);
}

void gw_reservations_free(gw_reservation *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        gw_reservation_clear(&v[i]);
    free(v);
}

/* Loads reservation id into *r (cleared first). Caller holds a transaction. */
static int load(gw_ledger *l, int64_t id, gw_reservation *r, gw_error *err)
{
    memset(r, 0, sizeof *r);
    sqlite3_stmt *st = l->st[ST_GET];
    sqlite3_bind_int64(st, 1, id);
    int s = sqlite3_step(st);
    if (s != SQLITE_ROW) {
        int rc = s == SQLITE_DONE ? gw__error_set(err, GW_ENOENT, "no reservation %lld",
                                                  (long long)id)
                                  : db_error(l, err, "reading a reservation");
        sqlite3_reset(st);
        return rc;
    }
    r->id = sqlite3_column_int64(st, 0);
    col_text(st, 1, r->key, sizeof r->key);
    col_text(st, 2, r->owner, sizeof r->owner);
    r->pid = (uint32_t)sqlite3_column_int64(st, 3);
    r->pid_start = sqlite3_column_int64(st, 4);
    r->created_ns = sqlite3_column_int64(st, 5);
    r->expires_ns = sqlite3_column_int64(st, 6);
    r->lease_ns = sqlite3_column_int64(st, 7);
    col_text(st, 8, r->note, sizeof r->note);
    const unsigned char *pj = sqlite3_column_text(st, 9);
    if (pj && !(r->plan_json = strdup((const char *)pj))) {
        sqlite3_reset(st);
        return gw__error_set(err, GW_ENOMEM, "ledger: out of memory");
    }
    sqlite3_reset(st);
    st = l->st[ST_GET_DEVS];
    sqlite3_bind_int64(st, 1, id);
    size_t cap = 0;
    int rc = GW_OK;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (GW__ARRAY_RESERVE(r->devices, cap, r->n_devices + 1, GW__ARRAY_UNBOUNDED)) {
            rc = gw__error_set(err, GW_ENOMEM, "ledger: out of memory");
            break;
        }
        gw_reservation_dev *d = &r->devices[r->n_devices++];
        col_text(st, 0, d->uuid, sizeof d->uuid);
        d->bytes = (uint64_t)sqlite3_column_int64(st, 1);
    }
    if (rc == GW_OK && s != SQLITE_DONE)
        rc = db_error(l, err, "reading a reservation's devices");
    sqlite3_reset(st);
    if (rc)
        gw_reservation_clear(r);
    return rc;
}

/* ------------------------------------------------------------ reserve */

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s && *s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static int insert(gw_ledger *l, const gw_plan *plan, const gw_place_device *devs,
                  const gw_reserve_req *req, int64_t pid_start, int64_t t, int64_t *id,
                  gw_error *err)
{
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw_json j;
    gw__json_init(&j, &sb, false);
    gw_place_plan_json(&j, plan, devs);
    if (sb.failed) {
        gw__strbuf_release(&sb);
        return gw__error_set(err, GW_ENOMEM, "ledger: out of memory");
    }
    sqlite3_stmt *st = l->st[ST_INS_RES];
    bind_text_or_null(st, 1, req->key);
    bind_text_or_null(st, 2, req->owner);
    sqlite3_bind_int64(st, 3, req->pid);
    sqlite3_bind_int64(st, 4, pid_start);
    sqlite3_bind_int64(st, 5, t);
    sqlite3_bind_int64(st, 6, req->lease_ns > 0 ? t + req->lease_ns : 0);
    sqlite3_bind_int64(st, 7, req->lease_ns > 0 ? req->lease_ns : 0);
    bind_text_or_null(st, 8, req->note);
    sqlite3_bind_text(st, 9, sb.data, (int)sb.len, SQLITE_STATIC);
    int rc = step_done(l, st, err, "recording a reservation");
    gw__strbuf_release(&sb);
    if (rc)
        return rc;
    *id = sqlite3_last_insert_rowid(l->db);
    st = l->st[ST_INS_DEV];
    for (size_t i = 0; i < plan->n_used; i++) {
        sqlite3_bind_int64(st, 1, *id);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        sqlite3_bind_text(st, 3, devs[plan->used[i].device].uuid, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (int64_t)plan->used[i].bytes);
        rc = step_done(l, st, err, "recording a reservation's device");
        if (rc)
            return rc;
    }
    return GW_OK;
}

/* Applies a committed plan-and-reserve to the mirror: the dead ids it
 * deleted, and the reservation it recorded (res non-NULL: id's rows from
 * plan on devs, owner and lease as res has them). */
static void mirror_committed(gw_ledger *l, const int64_t *dead, size_t n_dead,
                             const gw_reservation *res, const gw_plan *plan,
                             const gw_place_device *devs, int64_t id, int64_t pid_start)
{
    gw__mirror *m = &l->mirror;
    if (!m->valid)
        return;
    for (size_t i = 0; i < n_dead; i++)
        gw__mirror_remove(m, dead[i]);
    for (size_t i = 0; res && i < plan->n_used; i++) {
        gw__mirror_row r = {.id = id, .pid = res->pid, .pid_start = pid_start,
                            .expires_ns = res->expires_ns, .bytes = plan->used[i].bytes};
        gw__strlcpy(r.uuid, devs[plan->used[i].device].uuid, sizeof r.uuid);
        if (gw__mirror_add(m, &r) != GW_OK)
            return; /* out of memory: the mirror is invalid, read again next time */
    }
    assert(gw__mirror_check(m));
}

int gw_ledger_reserve(gw_ledger *l, gw_place_device *devs, size_t n,
                      const gw_place_seen *seen, size_t n_seen, const gw_place_need *need,
                      const gw_place_opts *opts, const gw_reserve_req *req, gw_plan *plan,
                      gw_reservation *out, bool *existed, gw_error *err)
{
    memset(out, 0, sizeof *out);
    *existed = false;
    int rc = need_writable(l, err);
    if (rc)
        return rc;
    gw_reserve_req none = {0};
    if (!req)
        req = &none;
    if (req->lease_ns < 0)
        return gw__error_set(err, GW_EINVAL, "ledger: negative lease");
    if (req->key && strlen(req->key) >= sizeof out->key)
        return gw__error_set(err, GW_EINVAL, "ledger: idempotency key longer than %zu bytes",
                             sizeof out->key - 1);
    int64_t pid_start = 0;
    if (req->pid && !gw__ledger_pid_alive(l->proc_root, req->pid, &pid_start))
        return gw__error_set(err, GW_EINVAL, "ledger: owner pid %u is not running", req->pid);
    rc = step_done(l, l->st[ST_BEGIN_IMM], err, "taking the writer lock");
    if (rc)
        return rc;
    judge j = {.l = l, .now = now(l)};
    int64_t *dead = NULL, id = 0;
    size_t n_dead = 0;
    rc = scan(l, &j, devs, n, seen, n_seen, &dead, &n_dead, err);
    if (!rc)
        rc = delete_ids(l, dead, n_dead, err);
    if (rc)
        goto fail;
    if (req->key && *req->key) {
        sqlite3_stmt *st = l->st[ST_BY_KEY];
        sqlite3_bind_text(st, 1, req->key, -1, SQLITE_STATIC);
        int s = sqlite3_step(st);
        int64_t found = s == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (s != SQLITE_ROW && s != SQLITE_DONE) {
            rc = db_error(l, err, "looking up the idempotency key");
            goto fail;
        }
        if (found) {
            rc = load(l, found, out, err);
            if (rc)
                goto fail;
            rc = step_done(l, l->st[ST_COMMIT], err, "commit");
            if (rc) {
                gw_reservation_clear(out);
                goto fail;
            }
            mirror_committed(l, dead, n_dead, NULL, NULL, NULL, 0, 0);
            free(dead);
            gw_plan_release(plan);
            plan->fits = true;
            *existed = true;
            return GW_OK;
        }
    }
    rc = gw_place(devs, n, need, opts, plan, err);
    if (rc)
        goto fail;
    if (plan->fits) {
        rc = insert(l, plan, devs, req, pid_start, j.now, &id, err);
        if (!rc)
            rc = load(l, id, out, err);
        if (rc)
            goto fail;
    }
    rc = step_done(l, l->st[ST_COMMIT], err, "commit");
    if (rc) {
        gw_reservation_clear(out);
        goto fail;
    }
    mirror_committed(l, dead, n_dead, plan->fits ? out : NULL, plan, devs, id, pid_start);
    free(dead);
    return GW_OK;
fail:
    free(dead);
    rollback(l);
    gw__mirror_clear(&l->mirror); /* a failed write: read it again next time */
    if (plan->fits) {
        plan->fits = false;
        plan->n_used = 0;
    }
    return rc;
}

/* ------------------------------------------------------------ small writes */

static int write_one(gw_ledger *l, int st_id, int64_t id, int64_t a, int64_t b, const char *what,
                     gw_error *err)
{
    int rc = need_writable(l, err);
    if (rc)
        return rc;
    rc = step_done(l, l->st[ST_BEGIN_IMM], err, "taking the writer lock");
    if (rc)
        return rc;
    sqlite3_stmt *st = l->st[st_id];
    sqlite3_bind_int64(st, 1, id);
    if (st_id != ST_DEL) {
        sqlite3_bind_int64(st, 2, a);
        sqlite3_bind_int64(st, 3, b);
    }
    rc = step_done(l, st, err, what);
    if (!rc && sqlite3_changes(l->db) == 0)
        rc = gw__error_set(err, GW_ENOENT, "ledger: no reservation %lld", (long long)id);
    if (!rc)
        rc = step_done(l, l->st[ST_COMMIT], err, "commit");
    if (rc) {
        rollback(l);
        gw__mirror_clear(&l->mirror);
        return rc;
    }
    if (st_id == ST_DEL)
        gw__mirror_remove(&l->mirror, id);
    else if (st_id == ST_RENEW)
        gw__mirror_set_expiry(&l->mirror, id, a);
    else
        gw__mirror_set_owner(&l->mirror, id, (uint32_t)a, b);
    return GW_OK;
}

int gw_ledger_release(gw_ledger *l, int64_t id, gw_error *err)
{
    return write_one(l, ST_DEL, id, 0, 0, "releasing a reservation", err);
}

int gw_ledger_renew(gw_ledger *l, int64_t id, int64_t lease_ns, gw_error *err)
{
    if (lease_ns < 0)
        return gw__error_set(err, GW_EINVAL, "ledger: negative lease");
    int64_t exp = lease_ns ? now(l) + lease_ns : 0;
    return write_one(l, ST_RENEW, id, exp, lease_ns, "renewing a lease", err);
}

int gw_ledger_set_pid(gw_ledger *l, int64_t id, uint32_t pid, gw_error *err)
{
    int64_t start = 0;
    if (pid && !gw__ledger_pid_alive(l->proc_root, pid, &start))
        start = 0;
    return write_one(l, ST_SET_PID, id, pid, start, "changing the owner", err);
}

int gw_ledger_reap(gw_ledger *l, size_t *released, gw_error *err)
{
    if (released)
        *released = 0;
    int rc = need_writable(l, err);
    if (rc)
        return rc;
    rc = step_done(l, l->st[ST_BEGIN_IMM], err, "taking the writer lock");
    if (rc)
        return rc;
    judge j = {.l = l, .now = now(l)};
    int64_t *dead = NULL;
    size_t n_dead = 0;
    sqlite3_stmt *st = l->st[ST_LIST_IDS];
    int s;
    size_t cap = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (alive(&j, (uint32_t)sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                  sqlite3_column_int64(st, 3)))
            continue;
        if (GW__ARRAY_RESERVE(dead, cap, n_dead + 1, GW__ARRAY_UNBOUNDED)) {
            rc = gw__error_set(err, GW_ENOMEM, "ledger: out of memory");
            break;
        }
        dead[n_dead++] = sqlite3_column_int64(st, 0);
    }
    if (!rc && s != SQLITE_DONE && s != SQLITE_ROW)
        rc = db_error(l, err, "reading reservations");
    sqlite3_reset(st);
    if (!rc)
        rc = delete_ids(l, dead, n_dead, err);
    if (!rc)
        rc = step_done(l, l->st[ST_COMMIT], err, "commit");
    if (rc) {
        free(dead);
        rollback(l);
        gw__mirror_clear(&l->mirror);
        return rc;
    }
    for (size_t i = 0; i < n_dead; i++)
        gw__mirror_remove(&l->mirror, dead[i]);
    free(dead);
    if (released)
        *released = n_dead;
    return GW_OK;
}

int gw_ledger_list(gw_ledger *l, gw_reservation **out, size_t *n, gw_error *err)
{
    *out = NULL;
    *n = 0;
    if (!l->db)
        return GW_OK;
    int rc = step_done(l, l->st[ST_BEGIN], err, "begin");
    if (rc)
        return rc;
    judge j = {.l = l, .now = now(l)};
    gw_reservation *v = NULL;
    size_t cap = 0, k = 0;
    int64_t *ids = NULL;
    size_t n_ids = 0, cap_ids = 0;
    sqlite3_stmt *st = l->st[ST_LIST_IDS];
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (!alive(&j, (uint32_t)sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                   sqlite3_column_int64(st, 3)))
            continue;
        if (GW__ARRAY_RESERVE(ids, cap_ids, n_ids + 1, GW__ARRAY_UNBOUNDED)) {
            rc = gw__error_set(err, GW_ENOMEM, "ledger: out of memory");
            break;
        }
        ids[n_ids++] = sqlite3_column_int64(st, 0);
    }
    if (!rc && s != SQLITE_DONE && s != SQLITE_ROW)
        rc = db_error(l, err, "reading reservations");
    sqlite3_reset(st);
    if (!rc && n_ids) {
        cap = n_ids;
        v = calloc(cap, sizeof *v);
        if (!v)
            rc = gw__error_set(err, GW_ENOMEM, "ledger: out of memory");
        for (size_t i = 0; !rc && i < n_ids; i++) {
            rc = load(l, ids[i], &v[k], err);
            if (!rc)
                k++;
        }
    }
    free(ids);
    rollback(l);
    if (rc) {
        gw_reservations_free(v, k);
        return rc;
    }
    *out = v;
    *n = k;
    return GW_OK;
}

int gw_ledger_get(gw_ledger *l, int64_t id, gw_reservation *out, gw_error *err)
{
    memset(out, 0, sizeof *out);
    if (!l->db)
        return gw__error_set(err, GW_ENOENT, "no reservation %lld (empty ledger)", (long long)id);
    int rc = step_done(l, l->st[ST_BEGIN], err, "begin");
    if (rc)
        return rc;
    rc = load(l, id, out, err);
    rollback(l);
    return rc;
}

int gw_ledger_check(gw_ledger *l, gw_error *err)
{
    if (!l->db)
        return GW_OK;
    static const struct {
        const char *sql;
        const char *problem;
    } checks[] = {
        {"SELECT count(*) FROM pragma_integrity_check WHERE integrity_check <> 'ok'",
         "SQLite integrity check failed"},
        {"SELECT count(*) FROM reservation_devices d WHERE NOT EXISTS "
         "(SELECT 1 FROM reservations r WHERE r.id = d.reservation_id)",
         "device rows without their reservation"},
        {"SELECT count(*) FROM reservations r WHERE NOT EXISTS "
         "(SELECT 1 FROM reservation_devices d WHERE d.reservation_id = r.id)",
         "reservations without devices"},
        {"SELECT count(*) FROM reservation_devices WHERE bytes <= 0", "device rows with no bytes"},
        {"SELECT count(*) FROM (SELECT idem_key FROM reservations WHERE idem_key IS NOT NULL "
         "GROUP BY idem_key HAVING count(*) > 1)",
         "duplicated idempotency keys"},
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(checks); i++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(l->db, checks[i].sql, -1, &st, NULL) != SQLITE_OK)
            return db_error(l, err, "checking");
        int s = sqlite3_step(st);
        long long bad = s == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
        sqlite3_finalize(st);
        if (bad < 0)
            return db_error(l, err, "checking");
        if (bad > 0)
            return gw__error_set(err, GW_EIO, "ledger %s: %s (%lld)", l->path, checks[i].problem, bad);
    }
    return GW_OK;
}
