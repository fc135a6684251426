/*
 * Named counters in a key-value store, in C: the Rust counter
 * (guest-examples/counter) with the same answers.
 *
 * - POST /counter/{name} adds one, atomically, and answers the new value:
 *   {"name":"visits","value":42};
 * - GET /counter/{name} answers the current value (0 if never counted);
 * - a name that is not 1 to MAX of A-Z a-z 0-9 . _ - is a 400, another
 *   method a 405, a store failure a 500 (and a line in the log).
 *
 * Config (optional, the manifest's `config` table):
 * - `store`: the key-value store to open (default "default"; the manifest
 *   must grant it in `key_value_stores`);
 * - `max_name`: the longest name accepted, 1 to 128 (default 128).
 */
#include <stdlib.h>
#include <string.h>

#include "gust.h"

#define MAX_NAME 128

static void reply(gust_response *res, int status, const char *json) {
    gust_res_respond(res, status, "application/json", json);
}

/* The longest name accepted: config `max_name`, clamped to 1..MAX_NAME. */
static size_t max_name(void) {
    long max = strtol(gust_config("max_name", "128"), NULL, 10);
    if (max < 1 || max > MAX_NAME) max = MAX_NAME;
    return (size_t)max;
}

/* Names are safe in a key and in JSON without escaping. */
static bool valid_name(const char *name, size_t max) {
    size_t len = strlen(name);
    if (len == 0 || len > max) return false;
    for (const char *c = name; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-';
        if (!ok) return false;
    }
    return true;
}

void gust_handle(gust_request *req, gust_response *res) {
    /* Routed by gust the name is a route parameter; called in-process
     * (http://counter.gust.internal/counter/NAME) it may only be in the path. */
    const char *name = gust_req_param(req, "name");
    if (!name) {
        const char *path = gust_req_path(req);
        name = strncmp(path, "/counter/", 9) == 0 ? path + 9 : "";
    }
    size_t max = max_name();
    if (!valid_name(name, max)) {
        gust_res_status(res, 400);
        gust_res_set_header(res, "content-type", "application/json");
        gust_res_printf(res, "{\"error\":\"a counter name is 1 to %zu of A-Z a-z 0-9 . _ -\"}", max);
        return;
    }
    bool post = gust_req_is(req, "POST");
    if (!post && !gust_req_is(req, "GET")) {
        gust_res_status(res, 405);
        gust_res_set_header(res, "allow", "GET, POST");
        return;
    }

    char key[sizeof "counter:" + MAX_NAME];
    strcpy(key, "counter:");
    strcat(key, name);
    const char *store_name = gust_config("store", "default");
    gust_kv *store = NULL;
    int64_t value = 0;
    int err = gust_kv_open(store_name, &store);
    if (!err && post) {
        err = gust_kv_increment(store, key, 1, &value);
    } else if (!err) {
        /* Incrementing by 0 reads the value in the store's own number
         * encoding; the existence check keeps GET from creating keys. */
        bool exists = false;
        err = gust_kv_exists(store, key, &exists);
        if (!err && exists) err = gust_kv_increment(store, key, 0, &value);
    }
    gust_kv_close(store);
    if (err) {
        gust_log(GUST_ERROR, "counter %s (store %s): %s", name, store_name, gust_last_error());
        reply(res, 500, "{\"error\":\"the counter store failed\"}");
        return;
    }
    gust_res_set_header(res, "content-type", "application/json");
    gust_res_printf(res, "{\"name\":\"%s\",\"value\":%lld}", name, (long long)value);
}
