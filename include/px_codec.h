/**
 * @file px_codec.h
 * PostgreSQL v3 wire protocol codec: pure functions over byte spans. Nothing
 * here touches a socket, a loop or the allocator. Readers return one of three
 * outcomes: need more bytes, error, or a complete item and how many bytes it
 * consumed. Declared lengths are checked against a caller-given cap as soon as
 * the header is read, before anything could be allocated for the body.
 *
 * Builders write into a caller-owned, fixed-capacity px_wbuf_t with a sticky
 * failure flag: build a whole reply, then check `failed` once.
 */
#ifndef PX_CODEC_H
#define PX_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PX_CODEC_MUSTCHECK __attribute__((warn_unused_result))

/* Startup-phase request codes (the int32 after the length). */
#define PX_PROTO_V3           196608u   /* 3.0 */
#define PX_PROTO_SSL_REQUEST  80877103u /* 1234.5679 */
#define PX_PROTO_GSSENC       80877104u /* 1234.5680 */
#define PX_PROTO_CANCEL       80877102u /* 1234.5678 */
#define PX_STARTUP_MAX_LEN    10000u    /* as PostgreSQL's MAX_STARTUP_PACKET_LENGTH */
#define PX_STARTUP_MAX_PARAMS 64

/* Authentication request codes ('R' message). */
enum {
    PX_AUTH_OK = 0,
    PX_AUTH_CLEARTEXT = 3,
    PX_AUTH_MD5 = 5,
    PX_AUTH_SASL = 10,
    PX_AUTH_SASL_CONTINUE = 11,
    PX_AUTH_SASL_FINAL = 12,
};

typedef enum px_codec_status {
    PX_CODEC_OK = 0,    /* a complete item; *consumed says how many bytes */
    PX_CODEC_NEED_MORE, /* the span ends before the item does */
    PX_CODEC_ERROR,     /* malformed or over the cap: answer 08P01 / close */
} px_codec_status_t;

const char *px_codec_status_to_str(px_codec_status_t st);

/** A borrowed span of bytes inside the caller's buffer. */
typedef struct px_span {
    const uint8_t *p;
    size_t n;
} px_span_t;

/** A regular message header: type byte + int32 length (which counts itself). */
typedef struct px_msg_hdr {
    uint8_t type;
    uint32_t body_len; /* bytes after the 5-byte header */
} px_msg_hdr_t;

#define PX_MSG_HDR_LEN 5

/**
 * Read a message header from @p p. NEED_MORE below 5 bytes; ERROR when the
 * length field is < 4 or the body exceeds @p max_body. Does not look at the body.
 */
px_codec_status_t px_codec_peek_header(const uint8_t *p, size_t n, uint32_t max_body,
                                       px_msg_hdr_t *out) PX_CODEC_MUSTCHECK;

/**
 * Read one whole message: OK only when the header and the whole body are in
 * the span; then @p body points at the body and *consumed = 5 + body_len.
 */
px_codec_status_t px_codec_read_msg(const uint8_t *p, size_t n, uint32_t max_body,
                                    px_msg_hdr_t *hdr, px_span_t *body,
                                    size_t *consumed) PX_CODEC_MUSTCHECK;

/* ---- startup phase ------------------------------------------------------ */

typedef enum px_startup_kind {
    PX_STARTUP_MESSAGE = 0, /* protocol 3.x StartupMessage */
    PX_STARTUP_SSL,         /* SSLRequest */
    PX_STARTUP_GSSENC,      /* GSSENCRequest */
    PX_STARTUP_CANCEL,      /* CancelRequest */
} px_startup_kind_t;

typedef struct px_startup_param {
    px_span_t name;  /* without the NUL */
    px_span_t value; /* without the NUL */
} px_startup_param_t;

typedef struct px_startup {
    px_startup_kind_t kind;
    uint32_t code;        /* raw protocol/request code */
    uint16_t proto_minor; /* for PX_STARTUP_MESSAGE */
    uint32_t cancel_pid;  /* for PX_STARTUP_CANCEL */
    uint32_t cancel_key;  /* for PX_STARTUP_CANCEL */
    px_startup_param_t params[PX_STARTUP_MAX_PARAMS];
    int n_params;
    int user_idx; /* index into params of "user", -1 when absent */
    int database_idx;
} px_startup_t;

/**
 * Read a startup-phase packet (no type byte). ERROR for a length outside
 * [8, PX_STARTUP_MAX_LEN], an unknown code, a major version other than 3,
 * parameters without their terminators, more than PX_STARTUP_MAX_PARAMS
 * parameters, or a StartupMessage without "user".
 * @p err (may be NULL) receives a static reason on ERROR.
 */
px_codec_status_t px_codec_read_startup(const uint8_t *p, size_t n, px_startup_t *out,
                                        size_t *consumed, const char **err) PX_CODEC_MUSTCHECK;

/* ---- body readers: a cursor with a sticky failure flag ------------------ */

typedef struct px_reader {
    const uint8_t *p;
    size_t n;
    size_t off;
    bool failed; /* set by any read past the end or a missing terminator */
} px_reader_t;

static inline px_reader_t px_reader_make(px_span_t s)
{
    px_reader_t r = {s.p, s.n, 0, false};
    return r;
}
uint8_t px_reader_byte(px_reader_t *r);
int16_t px_reader_int16(px_reader_t *r);
int32_t px_reader_int32(px_reader_t *r);
/** A NUL-terminated string; the span excludes the NUL. */
px_span_t px_reader_cstr(px_reader_t *r);
px_span_t px_reader_bytes(px_reader_t *r, size_t len);
/** True when every byte was read and nothing failed ("fully consumed"). */
bool px_reader_done(const px_reader_t *r);

/* Decoded bodies of the messages the proxy needs to look into. */

/** 'E' / 'N' fields. Unset fields are empty spans. */
typedef struct px_error_fields {
    px_span_t severity;    /* 'S' (localized) */
    px_span_t severity_nl; /* 'V' */
    px_span_t sqlstate;    /* 'C' */
    px_span_t message;     /* 'M' */
    px_span_t detail;      /* 'D' */
    px_span_t hint;        /* 'H' */
} px_error_fields_t;
bool px_codec_parse_error(px_span_t body, px_error_fields_t *out) PX_CODEC_MUSTCHECK;

/** 'Z': 'I' idle, 'T' in transaction, 'E' failed transaction. */
bool px_codec_parse_ready(px_span_t body, uint8_t *status) PX_CODEC_MUSTCHECK;
/** 'S' ParameterStatus. */
bool px_codec_parse_param_status(px_span_t body, px_span_t *name,
                                 px_span_t *value) PX_CODEC_MUSTCHECK;
/** 'K' BackendKeyData. */
bool px_codec_parse_backend_key(px_span_t body, uint32_t *pid, uint32_t *key) PX_CODEC_MUSTCHECK;
/** 'R' Authentication: the code and what follows it. */
bool px_codec_parse_auth(px_span_t body, int32_t *code, px_span_t *data) PX_CODEC_MUSTCHECK;
/** 'Q' Query: the SQL text (without the NUL). */
bool px_codec_parse_query(px_span_t body, px_span_t *sql) PX_CODEC_MUSTCHECK;
/** 'P' Parse: statement name, SQL text and the number of parameter types. */
bool px_codec_parse_parse(px_span_t body, px_span_t *stmt, px_span_t *sql,
                          int *n_param_types) PX_CODEC_MUSTCHECK;
/** 'B' Bind: portal and statement names (the rest is left to the caller). */
bool px_codec_parse_bind_names(px_span_t body, px_span_t *portal,
                               px_span_t *stmt) PX_CODEC_MUSTCHECK;
/** 'D' Describe / 'C' Close from the client: 'S' or 'P' and a name. */
bool px_codec_parse_target(px_span_t body, uint8_t *kind, px_span_t *name) PX_CODEC_MUSTCHECK;
/** 'E' Execute: portal and row limit. */
bool px_codec_parse_execute(px_span_t body, px_span_t *portal,
                            int32_t *max_rows) PX_CODEC_MUSTCHECK;
/** 'C' CommandComplete: the tag. */
bool px_codec_parse_command_complete(px_span_t body, px_span_t *tag) PX_CODEC_MUSTCHECK;
/** The row count a CommandComplete tag ends with ("SELECT 5", "INSERT 0 3"), 0 if none. */
uint64_t px_codec_tag_rows(px_span_t tag);
/** 'p' from the client after AuthenticationSASL: SASLInitialResponse. */
bool px_codec_parse_sasl_initial(px_span_t body, px_span_t *mechanism,
                                 px_span_t *data) PX_CODEC_MUSTCHECK;
/** 'p' PasswordMessage (also SASLResponse, whose data is the whole body). */
bool px_codec_parse_password(px_span_t body, px_span_t *password) PX_CODEC_MUSTCHECK;

/* ---- builders ----------------------------------------------------------- */

/** A caller-owned output buffer with a hard capacity and a sticky failure flag. */
typedef struct px_wbuf {
    uint8_t *p;
    size_t cap;
    size_t len;
    size_t _msg_start; /* offset of the message being built, for its length */
    bool failed;       /* set when anything did not fit */
} px_wbuf_t;

static inline px_wbuf_t px_wbuf_make(uint8_t *p, size_t cap)
{
    px_wbuf_t w = {p, cap, 0, 0, false};
    return w;
}
void px_wbuf_put_byte(px_wbuf_t *w, uint8_t v);
void px_wbuf_put_int16(px_wbuf_t *w, int16_t v);
void px_wbuf_put_int32(px_wbuf_t *w, int32_t v);
void px_wbuf_put_bytes(px_wbuf_t *w, const void *p, size_t n);
/** Writes the string and its NUL terminator. */
void px_wbuf_put_cstr(px_wbuf_t *w, const char *s);
void px_wbuf_put_span_cstr(px_wbuf_t *w, px_span_t s);
/** Start a typed message (type 0: an untyped startup-phase packet). */
void px_wbuf_begin(px_wbuf_t *w, uint8_t type);
/** Patch the length of the message started by px_wbuf_begin. */
void px_wbuf_end(px_wbuf_t *w);

/* Whole messages (each begins and ends its own message). */
void px_build_error(px_wbuf_t *w, const char *severity, const char *sqlstate, const char *message);
/** px_build_error with a Routine ('R') field, as PostgreSQL sends (NULL or "": none). */
void px_build_error_routine(px_wbuf_t *w, const char *severity, const char *sqlstate,
                            const char *message, const char *routine);
void px_build_notice(px_wbuf_t *w, const char *severity, const char *sqlstate, const char *message);
void px_build_auth(px_wbuf_t *w, int32_t code, const void *data, size_t len);
void px_build_auth_sasl(px_wbuf_t *w); /* offers SCRAM-SHA-256 */
void px_build_param_status(px_wbuf_t *w, const char *name, const char *value);
void px_build_backend_key(px_wbuf_t *w, uint32_t pid, uint32_t key);
void px_build_ready(px_wbuf_t *w, uint8_t status);
void px_build_query(px_wbuf_t *w, const char *sql);
void px_build_sync(px_wbuf_t *w);
void px_build_terminate(px_wbuf_t *w);
void px_build_password(px_wbuf_t *w, const char *password);
void px_build_sasl_initial(px_wbuf_t *w, const char *mechanism, const void *data, size_t len);
void px_build_sasl_response(px_wbuf_t *w, const void *data, size_t len);
void px_build_cancel_request(px_wbuf_t *w, uint32_t pid, uint32_t key);
/** NegotiateProtocolVersion: newest minor we support and the options we did not recognise. */
void px_build_negotiate_version(px_wbuf_t *w, uint16_t newest_minor, const px_span_t *unknown,
                                int n_unknown);
/** StartupMessage for protocol 3.0 from NULL-terminated name/value pairs. */
void px_build_startup(px_wbuf_t *w, const char *const *pairs);

/** Frontend ('F') and backend ('B') message type names for logs; "?" when unknown. */
const char *px_codec_frontend_name(uint8_t type);
const char *px_codec_backend_name(uint8_t type);

#endif
