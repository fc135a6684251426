/*
 * config.c: config (wasi:config@0.2.0-rc.1, values cached per instance)
 * and logging (wasi:logging) for gust.h.
 */
#include "gust_internal.h"

#include <stdio.h>

/* ---- Config ----------------------------------------------------------- */

int gust_config_get(const char *key, char **value) {
    if (!key || !value) return gust__fail(GUST_ERR_INVALID, NULL);
    *value = NULL;
    handler_string_t k = gust__str(key);
    handler_option_string_t got;
    wasi_config_0_2_0_rc_1_store_error_t err;
    if (!wasi_config_0_2_0_rc_1_store_get(&k, &got, &err)) {
        /* upstream and io both carry a message */
        int status = gust__fail_n(GUST_ERR_HOST, (const char *)err.val.upstream.ptr, err.val.upstream.len);
        wasi_config_0_2_0_rc_1_store_error_free(&err);
        return status;
    }
    if (!got.is_some) return GUST_NOT_FOUND;
    *value = gust__copy_n(got.val.ptr, got.val.len);
    handler_option_string_free(&got);
    return *value ? GUST_OK : gust__fail(GUST_ERR_NO_MEMORY, NULL);
}

typedef struct config_entry {
    struct config_entry *next;
    char *key;
    char *value; /* NULL: not set */
} config_entry;

static config_entry *config_cache;

const char *gust_config(const char *key, const char *fallback) {
    if (!key) return fallback;
    for (config_entry *e = config_cache; e; e = e->next) {
        if (strcmp(e->key, key) == 0) return e->value ? e->value : fallback;
    }
    char *value = NULL;
    int status = gust_config_get(key, &value);
    if (status != GUST_OK && status != GUST_NOT_FOUND) return fallback; /* not cached: retried */
    config_entry *e = malloc(sizeof *e);
    char *k = gust__copy_n(key, strlen(key));
    if (!e || !k) {
        free(e);
        free(k);
        free(value);
        return fallback;
    }
    e->key = k;
    e->value = value;
    e->next = config_cache;
    config_cache = e;
    return value ? value : fallback;
}

/* ---- Logging ---------------------------------------------------------- */

void gust_log(gust_level level, const char *fmt, ...) {
    char small[512];
    char *text = small;
    va_list args, again;
    va_start(args, fmt);
    va_copy(again, args);
    int n = vsnprintf(small, sizeof small, fmt, args);
    va_end(args);
    if (n < 0) {
        va_end(again);
        return;
    }
    if ((size_t)n >= sizeof small) {
        char *big = malloc((size_t)n + 1);
        if (big) {
            vsnprintf(big, (size_t)n + 1, fmt, again);
            text = big;
        } else {
            n = sizeof small - 1;
        }
    }
    va_end(again);
    handler_string_t context = {(uint8_t *)"", 0};
    handler_string_t message = {(uint8_t *)text, (size_t)n};
    if ((unsigned)level > GUST_CRITICAL) level = GUST_CRITICAL;
    wasi_logging_logging_log((wasi_logging_logging_level_t)level, &context, &message);
    if (text != small) free(text);
}
