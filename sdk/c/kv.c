/*
 * kv.c: key-value (wasi:keyvalue@0.2.0-draft2 store and atomics) for gust.h.
 */
#include "gust_internal.h"

struct gust_kv {
    wasi_keyvalue_0_2_0_draft2_store_own_bucket_t bucket;
};

static int kv_error(wasi_keyvalue_0_2_0_draft2_store_error_t *err) {
    int status;
    switch (err->tag) {
    case WASI_KEYVALUE_0_2_0_DRAFT2_STORE_ERROR_NO_SUCH_STORE:
        status = gust__fail(GUST_ERR_NO_SUCH_STORE, NULL);
        break;
    case WASI_KEYVALUE_0_2_0_DRAFT2_STORE_ERROR_ACCESS_DENIED:
        status = gust__fail(GUST_ERR_ACCESS_DENIED, NULL);
        break;
    default:
        status = gust__fail_n(GUST_ERR_HOST, (const char *)err->val.other.ptr, err->val.other.len);
        break;
    }
    wasi_keyvalue_0_2_0_draft2_store_error_free(err);
    return status;
}

static wasi_keyvalue_0_2_0_draft2_store_borrow_bucket_t kv_borrow(gust_kv *kv) {
    return wasi_keyvalue_0_2_0_draft2_store_borrow_bucket(kv->bucket);
}

int gust_kv_open(const char *name, gust_kv **kv) {
    if (!kv) return gust__fail(GUST_ERR_INVALID, NULL);
    *kv = NULL;
    handler_string_t id = gust__str(name);
    wasi_keyvalue_0_2_0_draft2_store_own_bucket_t bucket;
    wasi_keyvalue_0_2_0_draft2_store_error_t err;
    if (!wasi_keyvalue_0_2_0_draft2_store_open(&id, &bucket, &err)) return kv_error(&err);
    gust_kv *out = malloc(sizeof *out);
    if (!out) {
        wasi_keyvalue_0_2_0_draft2_store_bucket_drop_own(bucket);
        return gust__fail(GUST_ERR_NO_MEMORY, NULL);
    }
    out->bucket = bucket;
    *kv = out;
    return GUST_OK;
}

void gust_kv_close(gust_kv *kv) {
    if (!kv) return;
    wasi_keyvalue_0_2_0_draft2_store_bucket_drop_own(kv->bucket);
    free(kv);
}

int gust_kv_get(gust_kv *kv, const char *key, char **data, size_t *len) {
    if (!kv || !key || !data) return gust__fail(GUST_ERR_INVALID, NULL);
    *data = NULL;
    if (len) *len = 0;
    handler_string_t k = gust__str(key);
    handler_option_list_u8_t value;
    wasi_keyvalue_0_2_0_draft2_store_error_t err;
    if (!wasi_keyvalue_0_2_0_draft2_store_method_bucket_get(kv_borrow(kv), &k, &value, &err)) {
        return kv_error(&err);
    }
    if (!value.is_some) return GUST_NOT_FOUND;
    *data = gust__copy_n(value.val.ptr, value.val.len);
    if (len) *len = value.val.len;
    handler_option_list_u8_free(&value);
    return *data ? GUST_OK : gust__fail(GUST_ERR_NO_MEMORY, NULL);
}

int gust_kv_set(gust_kv *kv, const char *key, const void *data, size_t len) {
    if (!kv || !key || (len && !data)) return gust__fail(GUST_ERR_INVALID, NULL);
    handler_string_t k = gust__str(key);
    handler_list_u8_t value = {(uint8_t *)data, len};
    wasi_keyvalue_0_2_0_draft2_store_error_t err;
    if (!wasi_keyvalue_0_2_0_draft2_store_method_bucket_set(kv_borrow(kv), &k, &value, &err)) {
        return kv_error(&err);
    }
    return GUST_OK;
}

int gust_kv_set_str(gust_kv *kv, const char *key, const char *value) {
    return gust_kv_set(kv, key, value, value ? strlen(value) : 0);
}

int gust_kv_delete(gust_kv *kv, const char *key) {
    if (!kv || !key) return gust__fail(GUST_ERR_INVALID, NULL);
    handler_string_t k = gust__str(key);
    wasi_keyvalue_0_2_0_draft2_store_error_t err;
    if (!wasi_keyvalue_0_2_0_draft2_store_method_bucket_delete(kv_borrow(kv), &k, &err)) {
        return kv_error(&err);
    }
    return GUST_OK;
}

int gust_kv_exists(gust_kv *kv, const char *key, bool *exists) {
    if (!kv || !key || !exists) return gust__fail(GUST_ERR_INVALID, NULL);
    handler_string_t k = gust__str(key);
    wasi_keyvalue_0_2_0_draft2_store_error_t err;
    if (!wasi_keyvalue_0_2_0_draft2_store_method_bucket_exists(kv_borrow(kv), &k, exists, &err)) {
        return kv_error(&err);
    }
    return GUST_OK;
}

int gust_kv_increment(gust_kv *kv, const char *key, int64_t delta, int64_t *value) {
    if (!kv || !key) return gust__fail(GUST_ERR_INVALID, NULL);
    handler_string_t k = gust__str(key);
    int64_t result = 0;
    wasi_keyvalue_0_2_0_draft2_atomics_error_t err;
    if (!wasi_keyvalue_0_2_0_draft2_atomics_increment(kv_borrow(kv), &k, delta, &result, &err)) {
        return kv_error(&err);
    }
    if (value) *value = result;
    return GUST_OK;
}
