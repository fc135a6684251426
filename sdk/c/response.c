/*
 * response.c: the response builder of gust.h: status and headers, a body
 * buffered until sent, then streamed.
 */
#include "gust_internal.h"

#include <stdio.h>
#include <strings.h>

int gust_res_status(gust_response *res, int status) {
    if (res->sent) return gust__fail(GUST_ERR_STATE, "the response was already sent");
    if (status < 100 || status > 999) return gust__fail(GUST_ERR_INVALID, "a status is 100 to 999");
    res->status = status;
    return GUST_OK;
}

static int header_error(wasi_http_types_header_error_t *err) {
    switch (err->tag) {
    case WASI_HTTP_TYPES_HEADER_ERROR_FORBIDDEN:
        return gust__fail(GUST_ERR_INVALID, "a forbidden header");
    case WASI_HTTP_TYPES_HEADER_ERROR_IMMUTABLE:
        return gust__fail(GUST_ERR_STATE, "the headers are immutable");
    default:
        return gust__fail(GUST_ERR_INVALID, "an invalid header name or value");
    }
}

static int put_header(gust_response *res, const char *name, const char *value, bool append) {
    if (res->sent) return gust__fail(GUST_ERR_STATE, "the response was already sent");
    if (!name || !value) return gust__fail(GUST_ERR_INVALID, NULL);
    if (!res->has_headers) {
        res->headers = wasi_http_types_constructor_fields();
        res->has_headers = true;
    }
    if (strcasecmp(name, "content-length") == 0) res->has_length = true;
    wasi_http_types_field_name_t key = gust__str(name);
    wasi_http_types_field_value_t val = {(uint8_t *)value, strlen(value)};
    wasi_http_types_header_error_t err;
    bool ok;
    if (append) {
        ok = wasi_http_types_method_fields_append(wasi_http_types_borrow_fields(res->headers), &key, &val, &err);
    } else {
        wasi_http_types_list_field_value_t values = {&val, 1};
        ok = wasi_http_types_method_fields_set(wasi_http_types_borrow_fields(res->headers), &key, &values, &err);
    }
    return ok ? GUST_OK : header_error(&err);
}

int gust_res_set_header(gust_response *res, const char *name, const char *value) {
    return put_header(res, name, value, false);
}

int gust_res_add_header(gust_response *res, const char *name, const char *value) {
    return put_header(res, name, value, true);
}

/* Writes all of `data` to the response stream, waiting for room. */
static int stream_write(gust_response *res, const uint8_t *data, size_t len) {
    if (res->failed) return gust__fail(GUST_ERR_IO, "the response stream failed");
    wasi_io_streams_borrow_output_stream_t out = wasi_io_streams_borrow_output_stream(res->stream);
    while (len) {
        uint64_t room = 0;
        wasi_io_streams_stream_error_t err;
        if (!wasi_io_streams_method_output_stream_check_write(out, &room, &err)) {
            gust__stream_error_drop(&err);
            res->failed = true;
            return gust__fail(GUST_ERR_IO, "the response stream failed (client gone?)");
        }
        if (room == 0) {
            wasi_io_poll_own_pollable_t ready = wasi_io_streams_method_output_stream_subscribe(out);
            wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(ready));
            wasi_io_poll_pollable_drop_own(ready);
            continue;
        }
        size_t n = len < room ? len : (size_t)room;
        handler_list_u8_t chunk = {(uint8_t *)data, n};
        if (!wasi_io_streams_method_output_stream_write(out, &chunk, &err)) {
            gust__stream_error_drop(&err);
            res->failed = true;
            return gust__fail(GUST_ERR_IO, "the response stream failed (client gone?)");
        }
        data += n;
        len -= n;
    }
    return GUST_OK;
}

int gust_res_write(gust_response *res, const void *data, size_t len) {
    if (len && !data) return gust__fail(GUST_ERR_INVALID, NULL);
    if (res->sent) return stream_write(res, data, len);
    if (res->len + len > res->cap) {
        size_t want = res->cap ? res->cap * 2 : 1024;
        while (want < res->len + len) want *= 2;
        char *grown = realloc(res->buf, want);
        if (!grown) return gust__fail(GUST_ERR_NO_MEMORY, NULL);
        res->buf = grown;
        res->cap = want;
    }
    if (len) memcpy(res->buf + res->len, data, len);
    res->len += len;
    return GUST_OK;
}

int gust_res_print(gust_response *res, const char *text) {
    return gust_res_write(res, text, text ? strlen(text) : 0);
}

int gust_res_vprintf(gust_response *res, const char *fmt, va_list args) {
    char small[512];
    va_list again;
    va_copy(again, args);
    int n = vsnprintf(small, sizeof small, fmt, args);
    if (n < 0) {
        va_end(again);
        return gust__fail(GUST_ERR_INVALID, "a bad format");
    }
    if ((size_t)n < sizeof small) {
        va_end(again);
        return gust_res_write(res, small, (size_t)n);
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        va_end(again);
        return gust__fail(GUST_ERR_NO_MEMORY, NULL);
    }
    vsnprintf(big, (size_t)n + 1, fmt, again);
    va_end(again);
    int status = gust_res_write(res, big, (size_t)n);
    free(big);
    return status;
}

int gust_res_printf(gust_response *res, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    int status = gust_res_vprintf(res, fmt, args);
    va_end(args);
    return status;
}

int gust_res_respond(gust_response *res, int status, const char *content_type, const char *body) {
    int err = gust_res_status(res, status);
    if (err) return err;
    if (content_type && (err = gust_res_set_header(res, "content-type", content_type))) return err;
    res->len = 0;
    return gust_res_print(res, body);
}

int gust_res_send(gust_response *res) {
    if (res->sent) return GUST_OK;
    res->sent = true;
    if (!res->has_headers) {
        res->headers = wasi_http_types_constructor_fields();
        res->has_headers = true;
    }
    wasi_http_types_own_outgoing_response_t response =
        wasi_http_types_constructor_outgoing_response(res->headers);
    res->has_headers = false; /* consumed */
    wasi_http_types_borrow_outgoing_response_t borrowed =
        wasi_http_types_borrow_outgoing_response(response);
    wasi_http_types_method_outgoing_response_set_status_code(borrowed, (uint16_t)res->status);
    bool have_body = wasi_http_types_method_outgoing_response_body(borrowed, &res->body);
    wasi_http_types_result_own_outgoing_response_error_code_t result = {.is_err = false};
    result.val.ok = response;
    wasi_http_types_static_response_outparam_set(res->outparam, &result);
    if (!have_body ||
        !wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(res->body), &res->stream)) {
        res->failed = true;
        free(res->buf);
        res->buf = NULL;
        return gust__fail(GUST_ERR_IO, "the response body could not be opened");
    }
    int status = stream_write(res, (const uint8_t *)res->buf, res->len);
    free(res->buf);
    res->buf = NULL;
    res->len = res->cap = 0;
    return status;
}

void gust__response_finish(gust_response *res) {
    if (!res->sent) {
        /* The whole body is known: say how long it is (unless the handler did). */
        if (!res->has_length) {
            char digits[24], *p = digits + sizeof digits;
            size_t n = res->len;
            *--p = 0;
            do *--p = (char)('0' + n % 10); while ((n /= 10));
            put_header(res, "content-length", p, false);
        }
    }
    gust_res_send(res);
    if (res->failed && !res->stream.__handle && !res->body.__handle) return;
    if (!res->failed) {
        wasi_io_streams_stream_error_t err;
        if (!wasi_io_streams_method_output_stream_blocking_flush(
                wasi_io_streams_borrow_output_stream(res->stream), &err)) {
            gust__stream_error_drop(&err);
            res->failed = true;
        }
    }
    if (res->stream.__handle) wasi_io_streams_output_stream_drop_own(res->stream);
    if (res->body.__handle) {
        wasi_http_types_error_code_t err;
        if (!wasi_http_types_static_outgoing_body_finish(res->body, NULL, &err)) {
            wasi_http_types_error_code_free(&err);
        }
    }
}
