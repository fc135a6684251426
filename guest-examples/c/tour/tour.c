/*
 * A tour of sdk/c/gust.h: every part of the helper in one function (the
 * tests of tests/all/languages/c.rs drive it).
 *
 *   POST   /echo?q=..      the body back (at most config `max_body` bytes,
 *                          default 1 MiB: 413 past it), with x-method,
 *                          x-query (the whole query), x-q (parameter q)
 *                          and x-agent (the user-agent header)
 *   GET    /stream/{kib}   kib KiB of 'x', streamed after gust_res_send
 *   PUT    /kv/{key}       stores the body under key in store `default`
 *   GET    /kv/{key}       the value, 404 when absent
 *   DELETE /kv/{key}       deletes it (204)
 *   GET    /config/{key}   the config value, 404 when not set
 *   GET    /headers        every request header, one "name: value" a line
 */
#include <stdlib.h>
#include <string.h>

#include "gust.h"

static void text(gust_response *res, int status, const char *body) {
    gust_res_respond(res, status, "text/plain; charset=utf-8", body);
}

static void echo(gust_request *req, gust_response *res) {
    size_t max = (size_t)strtoul(gust_config("max_body", "1048576"), NULL, 10);
    const char *body;
    size_t len;
    int err = gust_req_body(req, max, &body, &len);
    if (err == GUST_ERR_TOO_LARGE) {
        text(res, 413, "too large\n");
        return;
    }
    if (err) {
        text(res, 400, gust_last_error());
        return;
    }
    const char *type = gust_req_header(req, "Content-Type");
    if (type) gust_res_set_header(res, "content-type", type);
    const char *q = gust_req_query_param(req, "q");
    gust_res_set_header(res, "x-method", gust_req_method(req));
    gust_res_set_header(res, "x-query", gust_req_query(req));
    gust_res_set_header(res, "x-q", q ? q : "(none)");
    const char *agent = gust_req_header(req, "user-agent");
    if (agent) gust_res_set_header(res, "x-agent", agent);
    gust_res_write(res, body, len);
}

static void stream(gust_request *req, gust_response *res) {
    long kib = strtol(gust_req_param(req, "kib"), NULL, 10);
    if (kib < 0 || kib > 65536) {
        text(res, 400, "0 to 65536 KiB\n");
        return;
    }
    char chunk[1024];
    memset(chunk, 'x', sizeof chunk);
    gust_res_set_header(res, "content-type", "application/octet-stream");
    if (gust_res_send(res)) return;
    for (long i = 0; i < kib; i++) {
        if (gust_res_write(res, chunk, sizeof chunk)) return; /* the client left */
    }
    /* Too late for headers now: an error, not a crash. */
    if (gust_res_set_header(res, "x-late", "1") != GUST_ERR_STATE) gust_log(GUST_ERROR, "late header accepted");
}

static void kv(gust_request *req, gust_response *res) {
    const char *key = gust_req_param(req, "key");
    gust_kv *store;
    int err = gust_kv_open("default", &store);
    if (err) {
        text(res, 500, gust_last_error());
        return;
    }
    if (gust_req_is(req, "PUT")) {
        const char *body;
        size_t len;
        err = gust_req_body(req, 1 << 20, &body, &len);
        if (!err) err = gust_kv_set(store, key, body, len);
        if (!err) text(res, 201, "stored\n");
    } else if (gust_req_is(req, "GET")) {
        char *value;
        size_t len;
        err = gust_kv_get(store, key, &value, &len);
        if (err == GUST_NOT_FOUND) {
            err = GUST_OK;
            text(res, 404, "no such key\n");
        } else if (!err) {
            gust_res_set_header(res, "content-type", "application/octet-stream");
            gust_res_write(res, value, len);
            free(value);
        }
    } else if (gust_req_is(req, "DELETE")) {
        err = gust_kv_delete(store, key);
        if (!err) gust_res_status(res, 204);
    } else {
        text(res, 405, "GET, PUT or DELETE\n");
    }
    gust_kv_close(store);
    if (err) {
        gust_log(GUST_ERROR, "kv %s: %s", key, gust_last_error());
        text(res, 500, gust_last_error());
    }
}

static void config(gust_request *req, gust_response *res) {
    char *value;
    int err = gust_config_get(gust_req_param(req, "key"), &value);
    if (err == GUST_NOT_FOUND) {
        text(res, 404, "not set\n");
        return;
    }
    if (err) {
        text(res, 500, gust_last_error());
        return;
    }
    text(res, 200, value);
    free(value);
}

static void headers(gust_request *req, gust_response *res) {
    const char *name, *value;
    gust_res_set_header(res, "content-type", "text/plain; charset=utf-8");
    for (size_t i = 0; gust_req_header_at(req, i, &name, &value); i++) {
        gust_res_printf(res, "%s: %s\n", name, value);
    }
}

void gust_handle(gust_request *req, gust_response *res) {
    const char *path = gust_req_path(req);
    gust_log(GUST_INFO, "%s %s", gust_req_method(req), path);
    if (strcmp(path, "/echo") == 0) echo(req, res);
    else if (strncmp(path, "/stream/", 8) == 0) stream(req, res);
    else if (strncmp(path, "/kv/", 4) == 0) kv(req, res);
    else if (strncmp(path, "/config/", 8) == 0) config(req, res);
    else if (strcmp(path, "/headers") == 0) headers(req, res);
    else text(res, 404, "not found\n");
}
