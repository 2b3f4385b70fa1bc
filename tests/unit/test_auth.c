/*
 * test_auth.c - unit tests for proxy/auth.c: SCRAM-SHA-256 in both roles
 * against the RFC 7677 vector and verifiers made by PostgreSQL 15, complete
 * exchanges (plain secret, verifier, recovered ClientKey), every class of
 * malformed message, md5, and the userlist.txt parser.
 *
 * Invariant: no test depends on another's state; each builds its own
 * exchange, so any one can be run alone. Output buffers are sized exactly
 * where a test proves a bound, so AddressSanitizer catches an overrun.
 */
#include "px_auth.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* RFC 7677 section 3, user "user", password "pencil". */
#define RFC_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_CLIENT_BARE  "n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_CNONCE       "rOprNGfwEbeRWgbNEkqO"
#define RFC_NONCE        "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SERVER_FIRST "r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL "c=biws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
/* The verifier PostgreSQL would store for that password and salt. */
#define RFC_VERIFIER                                                                               \
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"    \
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
static const uint8_t rfc_client_key[PX_SCRAM_KEY_LEN] = {
    0xa6, 0x0f, 0xc9, 0x23, 0xd6, 0x7e, 0x86, 0x44, 0xa9, 0x2d, 0x16, 0xb9, 0x6e, 0xda, 0x5e, 0xf4,
    0x65, 0x6b, 0x0c, 0x72, 0x5c, 0x48, 0x43, 0x74, 0xbe, 0x25, 0x53, 0x55, 0x76, 0x99, 0x6e, 0x8b,
};

/* base64 of 32 zero bytes: a well-formed but wrong proof */
#define ZERO_PROOF "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

/* Verifiers made by PostgreSQL 15.20 (CREATE ROLE ... PASSWORD) with the
 * password beside each; the non-ASCII ones exercise SASLprep. */
static const struct {
    const char *what;
    const char *password;
    const char *verifier;
} pg15[] = {
    {"ascii", "pg-interop-pass",
     "SCRAM-SHA-256$4096:AXzEED/BZpq+Gzi7VjZ+RQ==$W07MFTomZLz22zYlQui7M0oM9mrHO8NPoy/q2rkz67Q=:"
     "DJU/qy+GuZZJ5kv1kUi06FFSoMbtSH/F40jSKlHXKWg="},
    {"latin-1, already NFKC",
     "p\xc3\xa4"
     "ssw\xc3\xb6"
     "rd",
     "SCRAM-SHA-256$4096:MJ7rLkwUpjjey026fTYW2Q==$y9qY/ozYFWNdhdMXWd/Q4Hm+87pkF7EJdVLi8+SnWVg=:"
     "z3dxEgdoK4leg7Lm/Qd7cYiwYWdtfyhkK3QIc+/dNFw="},
    {"fullwidth, normalised to ascii",
     "\xef\xbd\x90\xef\xbd\x81\xef\xbd\x93\xef\xbd\x93\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93",
     "SCRAM-SHA-256$4096:XytBSeNMsCaMMl32/1onDw==$qLGdRxqeOwasSmwYwza86jQrIW8RIYKSc7iMaf6YR1s=:"
     "PE+fb1TlFHOMx5+3UNXp355YqrJ0p5QB3y6Y+wfoKD0="},
    {"fullwidth password typed as ascii", "pass123",
     "SCRAM-SHA-256$4096:XytBSeNMsCaMMl32/1onDw==$qLGdRxqeOwasSmwYwza86jQrIW8RIYKSc7iMaf6YR1s=:"
     "PE+fb1TlFHOMx5+3UNXp355YqrJ0p5QB3y6Y+wfoKD0="},
    {"nbsp to space, soft hyphen and zwsp mapped",
     "a\xc2\xa0"
     "b\xc2\xad"
     "c\xe2\x80\x8b"
     "d",
     "SCRAM-SHA-256$4096:fjkyZUNzHRGVU/mpGiLxXw==$aKAB+MaVIdrKrlrrid1HTvxSLLanjctzZHRfNxkh13w=:"
     "XP9+WDy2vUhIWTJulL40R+KGoKg+wBg3AtlQ+g4eWD4="},
    {"compatibility characters", "x\xc2\xbd\xef\xac\x81\xc2\xaa\xc2\xb4\xc4\xb3",
     "SCRAM-SHA-256$4096:1iqVbdxMJwoE55Dnzo9JIQ==$bxAj8ZvSa8TzXV82uMDXYGsA3xIiOhNFcvHHKSUIGu4=:"
     "99bVzzSXHoBfTf5rdHKjuulGpDVGSNo8sxSBuZp2Z0g="},
    {"control character with non-ascii", "\xc3\xa9\tz",
     "SCRAM-SHA-256$4096:sVWIYiNLiUCurpGRUXy9/w==$6JMQQ8f7TdFM1jE0vnczDsdv9YxP7//DceBZ2dI3JSI=:"
     "dpHJhYqGNYhIDU14Eue62AwcBph30wZpHXS5rfc79R4="},
    {"cjk and kana",
     "\xe5\xaf\x86\xe7\xa0\x81\xe3\x83\x91\xe3\x82\xb9\xe3\x83\xaf\xe3\x83\xbc\xe3\x83\x89",
     "SCRAM-SHA-256$4096:vCYktDYtSJmVMYj42tnD2Q==$knCCANoHOd6v7czUoIQLDIN0N6bL4CaZDNF19DWc2ys=:"
     "MtUvqQ4FFRKRczZhvmJPVwq6jtFJZW1qPeH7EvMgBjg="},
    {"prohibited char keeps the raw bytes", "\xc3\xa9\xc2\xa0\tz",
     "SCRAM-SHA-256$4096:UAtx1j/3orIfWyi5vYvlWQ==$sn5a/kGJvxcX42XLDuMCZAJmuTCyCvakfNgs5ZCkv5w=:"
     "RyWC3MVSXde0Z6CXG+a9sOLypRO9ocDIgovCfvFnWAs="},
    {"empty after mapping keeps the raw bytes", "\xc2\xad",
     "SCRAM-SHA-256$4096:74hx8IEdD3YjXwXFGBfE6g==$QtwZZiv5Wcd+9KfxWugiKV0mJAE368uuYNe3gpN086w=:"
     "A6iL4S8FZcS1sTRyPjrZPTjP+AjZBX5D1Xo2Ps7W6dQ="},
};

/* ---- helpers --------------------------------------------------------------- */

/*
 * Runs a whole exchange between @p srv (already initialised) and @p cli
 * (already initialised). Returns the server's verdict on the proof, or the
 * client's verdict on the server signature if the proof passed.
 */
static px_scram_result_t exchange(px_scram_server_t *srv, px_scram_client_t *cli)
{
    char m1[256], m2[512], m3[512], m4[128];
    size_t n1, n3 = 0;
    px_scram_result_t r;

    n1 = px_scram_client_first(cli, m1, sizeof m1);
    CU_ASSERT_FATAL(n1 > 0);
    CU_ASSERT_EQUAL(n1, strlen(m1));
    r = px_scram_server_first(srv, m1, n1, m2, sizeof m2);
    CU_ASSERT_EQUAL_FATAL(r, PX_SCRAM_OK);
    r = px_scram_client_final(cli, m2, strlen(m2), m3, sizeof m3, &n3);
    CU_ASSERT_EQUAL_FATAL(r, PX_SCRAM_OK);
    CU_ASSERT_EQUAL(n3, strlen(m3));
    r = px_scram_server_final(srv, m3, n3, m4, sizeof m4);
    if (r != PX_SCRAM_OK)
        return r;
    return px_scram_client_verify(cli, m4, strlen(m4));
}

static px_secret_t parsed(const char *text)
{
    px_secret_t s;
    CU_ASSERT_FATAL(px_secret_parse(text, &s));
    return s;
}

/* A server state that has answered client-first "n,,n=,r=abc"; its full
 * nonce goes to @p nonce. */
static void server_after_first(px_scram_server_t *srv, const char *client_first, char *nonce,
                               size_t noncelen)
{
    char out[512];
    px_secret_t s = parsed(RFC_VERIFIER);

    CU_ASSERT_FATAL(px_scram_server_init(srv, &s));
    CU_ASSERT_EQUAL_FATAL(
        px_scram_server_first(srv, client_first, strlen(client_first), out, sizeof out),
        PX_SCRAM_OK);
    CU_ASSERT_FATAL(strncmp(out, "r=", 2) == 0);
    const char *comma = strchr(out, ',');
    CU_ASSERT_FATAL(comma && (size_t)(comma - out - 2) < noncelen);
    memcpy(nonce, out + 2, (size_t)(comma - out - 2));
    nonce[comma - out - 2] = '\0';
}

static px_scram_result_t server_final_str(px_scram_server_t *srv, const char *msg)
{
    char out[128];
    return px_scram_server_final(srv, msg, strlen(msg), out, sizeof out);
}

/* ---- SCRAM against published and PostgreSQL-made vectors ------------------- */

static void test_rfc7677_verifier_parses_to_its_keys(void)
{
    px_secret_t s = parsed(RFC_VERIFIER);

    CU_ASSERT_EQUAL(s.kind, PX_SECRET_SCRAM);
    CU_ASSERT_EQUAL(s.iterations, 4096);
    CU_ASSERT_EQUAL(s.salt_len, 16);
    CU_ASSERT_STRING_EQUAL(s.text, RFC_VERIFIER);
}

static void test_rfc7677_client_sends_vector_proof_and_accepts_vector_signature(void)
{
    px_scram_client_t cli;
    char out[256];
    size_t used = 0;

    px_scram_client_init_password(&cli, "pencil");
    /* pin the nonce the RFC used instead of a random one */
    strcpy(cli.client_nonce, RFC_CNONCE);
    strcpy(cli.client_first_bare, RFC_CLIENT_BARE);
    CU_ASSERT_EQUAL_FATAL(px_scram_client_final(&cli, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST),
                                                out, sizeof out, &used),
                          PX_SCRAM_OK);
    CU_ASSERT_STRING_EQUAL(out, RFC_CLIENT_FINAL);
    CU_ASSERT_EQUAL(used, strlen(RFC_CLIENT_FINAL));
    CU_ASSERT_EQUAL(px_scram_client_verify(&cli, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL)),
                    PX_SCRAM_OK);
}

static void test_rfc7677_server_accepts_vector_proof_and_recovers_client_key(void)
{
    px_scram_server_t srv;
    px_secret_t s = parsed(RFC_VERIFIER);
    char out[512];

    CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
    CU_ASSERT_EQUAL_FATAL(
        px_scram_server_first(&srv, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), out, sizeof out),
        PX_SCRAM_OK);
    /* the server nonce is random; pin the RFC's to replay its messages */
    CU_ASSERT(strncmp(out, "r=" RFC_CNONCE, strlen("r=" RFC_CNONCE)) == 0);
    strcpy(srv.nonce, RFC_NONCE);
    strcpy(srv.server_first, RFC_SERVER_FIRST);
    CU_ASSERT_EQUAL_FATAL(
        px_scram_server_final(&srv, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL), out, sizeof out),
        PX_SCRAM_OK);
    CU_ASSERT_STRING_EQUAL(out, RFC_SERVER_FINAL);
    CU_ASSERT(srv.have_client_key);
    CU_ASSERT(memcmp(srv.client_key, rfc_client_key, PX_SCRAM_KEY_LEN) == 0);
}

static void test_postgres15_verifiers_accept_their_passwords(void)
{
    for (size_t i = 0; i < sizeof pg15 / sizeof pg15[0]; i++) {
        px_scram_server_t srv;
        px_scram_client_t cli;
        px_secret_t s;

        CU_ASSERT_FATAL(px_secret_parse(pg15[i].verifier, &s));
        CU_ASSERT_EQUAL(s.kind, PX_SECRET_SCRAM);
        CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
        px_scram_client_init_password(&cli, pg15[i].password);
        px_scram_result_t r = exchange(&srv, &cli);
        if (r != PX_SCRAM_OK)
            fprintf(stderr, "\n  postgres15 vector \"%s\" failed\n", pg15[i].what);
        CU_ASSERT_EQUAL(r, PX_SCRAM_OK);
    }
}

static void test_postgres15_verifier_rejects_wrong_password(void)
{
    px_scram_server_t srv;
    px_scram_client_t cli;
    px_secret_t s = parsed(pg15[0].verifier);

    CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
    px_scram_client_init_password(&cli, "pg-interop-pasS");
    CU_ASSERT_EQUAL(exchange(&srv, &cli), PX_SCRAM_FAIL_PROOF);
}

/* ---- SCRAM round trips ------------------------------------------------------- */

static void test_plain_secret_round_trip_succeeds(void)
{
    px_scram_server_t srv;
    px_scram_client_t cli;
    px_secret_t s = parsed("s3cret pass");

    CU_ASSERT_EQUAL(s.kind, PX_SECRET_PLAIN);
    CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
    /* the plaintext became a verifier and is not kept */
    CU_ASSERT_EQUAL(srv.secret.kind, PX_SECRET_SCRAM);
    CU_ASSERT(strncmp(srv.secret.text, "SCRAM-SHA-256$4096:", 19) == 0);
    CU_ASSERT_EQUAL(srv.secret.salt_len, 16);
    CU_ASSERT(strstr(srv.secret.text, "s3cret") == NULL);
    px_scram_client_init_password(&cli, "s3cret pass");
    CU_ASSERT_EQUAL(exchange(&srv, &cli), PX_SCRAM_OK);
    CU_ASSERT(srv.have_client_key);
}

static void test_plain_secret_gets_fresh_salt_each_exchange(void)
{
    px_scram_server_t a, b;
    px_secret_t s = parsed("same");

    CU_ASSERT_FATAL(px_scram_server_init(&a, &s));
    CU_ASSERT_FATAL(px_scram_server_init(&b, &s));
    CU_ASSERT(memcmp(a.secret.salt, b.secret.salt, 16) != 0);
}

static void test_verifier_round_trip_succeeds(void)
{
    px_scram_server_t srv;
    px_scram_client_t cli;
    char v[256];

    CU_ASSERT_FATAL(px_scram_make_verifier("hunter2", 0, v, sizeof v));
    px_secret_t s = parsed(v);
    CU_ASSERT_EQUAL(s.kind, PX_SECRET_SCRAM);
    CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
    px_scram_client_init_password(&cli, "hunter2");
    CU_ASSERT_EQUAL(exchange(&srv, &cli), PX_SCRAM_OK);
}

static void test_wrong_password_fails_proof_without_client_key(void)
{
    px_scram_server_t srv;
    px_scram_client_t cli;
    char v[256];

    CU_ASSERT_FATAL(px_scram_make_verifier("right", 0, v, sizeof v));
    px_secret_t s = parsed(v);
    CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
    px_scram_client_init_password(&cli, "wrong");
    CU_ASSERT_EQUAL(exchange(&srv, &cli), PX_SCRAM_FAIL_PROOF);
    CU_ASSERT_FALSE(srv.have_client_key);
}

static void test_recovered_client_key_logs_in_to_second_server(void)
{
    px_scram_server_t first, second;
    px_scram_client_t cli;
    char v[256];

    /* client -> proxy: the proxy learns ClientKey */
    CU_ASSERT_FATAL(px_scram_make_verifier("pooled", 0, v, sizeof v));
    px_secret_t s = parsed(v);
    CU_ASSERT_FATAL(px_scram_server_init(&first, &s));
    px_scram_client_init_password(&cli, "pooled");
    CU_ASSERT_EQUAL_FATAL(exchange(&first, &cli), PX_SCRAM_OK);
    CU_ASSERT_FATAL(first.have_client_key);

    /* proxy -> "PostgreSQL" holding the same verifier, without the password */
    CU_ASSERT_FATAL(px_scram_server_init(&second, &s));
    px_scram_client_init_keys(&cli, first.client_key, s.server_key);
    CU_ASSERT_EQUAL(exchange(&second, &cli), PX_SCRAM_OK);
    CU_ASSERT(memcmp(second.client_key, first.client_key, PX_SCRAM_KEY_LEN) == 0);
}

static void test_recovered_client_key_logs_in_to_postgres15_verifier(void)
{
    px_scram_server_t proxy, pg;
    px_scram_client_t cli;
    px_secret_t s = parsed(pg15[1].verifier);

    CU_ASSERT_FATAL(px_scram_server_init(&proxy, &s));
    px_scram_client_init_password(&cli, pg15[1].password);
    CU_ASSERT_EQUAL_FATAL(exchange(&proxy, &cli), PX_SCRAM_OK);
    CU_ASSERT_FATAL(px_scram_server_init(&pg, &s));
    px_scram_client_init_keys(&cli, proxy.client_key, s.server_key);
    CU_ASSERT_EQUAL(exchange(&pg, &cli), PX_SCRAM_OK);
}

static void test_keys_login_rejects_server_without_matching_server_key(void)
{
    px_scram_server_t srv;
    px_scram_client_t cli;
    char v[256];
    uint8_t wrong_server_key[PX_SCRAM_KEY_LEN];

    CU_ASSERT_FATAL(px_scram_make_verifier("pw", 0, v, sizeof v));
    px_secret_t s = parsed(v);
    CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
    px_scram_client_init_password(&cli, "pw");
    CU_ASSERT_EQUAL_FATAL(exchange(&srv, &cli), PX_SCRAM_OK);

    /* the proof still passes, but the server's signature must not */
    memcpy(wrong_server_key, s.server_key, sizeof wrong_server_key);
    wrong_server_key[0] ^= 1;
    uint8_t client_key[PX_SCRAM_KEY_LEN];
    memcpy(client_key, srv.client_key, sizeof client_key);
    CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
    px_scram_client_init_keys(&cli, client_key, wrong_server_key);
    CU_ASSERT_EQUAL(exchange(&srv, &cli), PX_SCRAM_FAIL_PROOF);
}

static void test_keys_login_with_wrong_client_key_fails_proof(void)
{
    px_scram_server_t srv;
    px_scram_client_t cli;
    uint8_t bogus[PX_SCRAM_KEY_LEN] = {1, 2, 3};
    px_secret_t s = parsed(RFC_VERIFIER);

    CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
    px_scram_client_init_keys(&cli, bogus, s.server_key);
    CU_ASSERT_EQUAL(exchange(&srv, &cli), PX_SCRAM_FAIL_PROOF);
    CU_ASSERT_FALSE(srv.have_client_key);
}

static void test_y_flag_client_completes_with_matching_binding(void)
{
    px_scram_server_t srv;
    char nonce[128], msg[512];

    /* libpq sends 'y' over TLS when the server offers no -PLUS mechanism */
    server_after_first(&srv, "y,,n=,r=abc", nonce, sizeof nonce);
    snprintf(msg, sizeof msg, "c=biws,r=%s,p=" ZERO_PROOF, nonce);
    CU_ASSERT_EQUAL(server_final_str(&srv, msg), PX_SCRAM_FAIL_PROTOCOL);

    server_after_first(&srv, "y,,n=,r=abc", nonce, sizeof nonce);
    snprintf(msg, sizeof msg, "c=eSws,r=%s,p=" ZERO_PROOF, nonce);
    CU_ASSERT_EQUAL(server_final_str(&srv, msg), PX_SCRAM_FAIL_PROOF); /* parsed; proof wrong */

    /* the RFC 7677 exchange redone with 'y' (proof and signature computed
     * independently with Python's hashlib over c=eSws) */
    px_secret_t s = parsed(RFC_VERIFIER);
    char out[512];
    const char *first = "y,,n=user,r=" RFC_CNONCE;
    const char *final = "c=eSws,r=" RFC_NONCE ",p=FoqiHTtQEDE8lz1CdaEe3tK4mS+iMDTl77SPyDS53DY=";
    CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
    CU_ASSERT_EQUAL_FATAL(px_scram_server_first(&srv, first, strlen(first), out, sizeof out),
                          PX_SCRAM_OK);
    CU_ASSERT_EQUAL(srv.cbind_flag, 'y');
    strcpy(srv.nonce, RFC_NONCE);
    strcpy(srv.server_first, RFC_SERVER_FIRST);
    CU_ASSERT_EQUAL(px_scram_server_final(&srv, final, strlen(final), out, sizeof out),
                    PX_SCRAM_OK);
    CU_ASSERT_STRING_EQUAL(out, "v=dI4KpiQJwBr1+V+K6U1dA6l6I4I9DUNXWND4pcpRU3U=");
    CU_ASSERT(srv.have_client_key);
}

static void test_mock_exchange_fails_proof_with_stable_salt(void)
{
    px_scram_server_t a, b, c;
    px_scram_client_t cli;

    CU_ASSERT_FATAL(px_scram_server_init_mock(&a, "ghost"));
    CU_ASSERT_FATAL(px_scram_server_init_mock(&b, "ghost"));
    CU_ASSERT_FATAL(px_scram_server_init_mock(&c, "other"));
    CU_ASSERT_EQUAL(a.secret.salt_len, 16);
    CU_ASSERT(memcmp(a.secret.salt, b.secret.salt, 16) == 0);
    CU_ASSERT(memcmp(a.secret.salt, c.secret.salt, 16) != 0);
    CU_ASSERT_EQUAL(a.secret.iterations, 4096);
    px_scram_client_init_password(&cli, "anything");
    CU_ASSERT_EQUAL(exchange(&a, &cli), PX_SCRAM_FAIL_PROOF);
    CU_ASSERT_FALSE(a.have_client_key);
}

static void test_server_init_refuses_md5_and_none_secrets(void)
{
    px_scram_server_t srv;
    px_secret_t md5 = parsed("md53175bce1d3201d16594cebf9d7eb3f9d");
    px_secret_t none = parsed("");

    CU_ASSERT_FALSE(px_scram_server_init(&srv, &md5));
    CU_ASSERT_FALSE(px_scram_server_init(&srv, &none));
    CU_ASSERT_FALSE(px_scram_server_init(&srv, NULL));
}

/* ---- SCRAM server: malformed input -------------------------------------------- */

static void test_client_first_malformed_is_protocol_error(void)
{
    static const char *bad[] = {
        "p=tls-server-end-point,,n=,r=abc", /* channel binding we never offered */
        "x,,n=,r=abc",                      /* unknown gs2 flag */
        "n",
        "n,",
        "n,,",
        "n,a=admin,n=,r=abc", /* authzid unsupported */
        "n,,m=ext,n=,r=abc",  /* mandatory extension */
        "n,,r=abc",           /* missing n= */
        "n,,n=,r=",           /* empty nonce */
        "n,,n=,r=ab c",       /* space is not printable in a nonce */
        "n,,n=,r=ab\x7f",     /* DEL neither */
        "n,,n=,x=abc",        /* r= expected */
        "n,,n=,r=abc,junk",   /* trailing garbage, not an attribute */
        "n,,n=,r=abc,1=x",    /* attribute names are letters */
        "n,,n=",
        "n,,n",
        "y,n=,r=abc",
    };
    char out[512];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        px_scram_server_t srv;
        px_secret_t s = parsed(RFC_VERIFIER);
        CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
        px_scram_result_t r = px_scram_server_first(&srv, bad[i], strlen(bad[i]), out, sizeof out);
        if (r != PX_SCRAM_FAIL_PROTOCOL)
            fprintf(stderr, "\n  accepted bad client-first #%zu\n", i);
        CU_ASSERT_EQUAL(r, PX_SCRAM_FAIL_PROTOCOL);
        CU_ASSERT_STRING_EQUAL(out, "");
    }
}

static void test_client_first_empty_or_embedded_nul_is_protocol_error(void)
{
    px_scram_server_t srv;
    px_secret_t s = parsed(RFC_VERIFIER);
    char out[512];
    static const char with_nul[] = "n,,n=\0x,r=abc";

    CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
    CU_ASSERT_EQUAL(px_scram_server_first(&srv, "", 0, out, sizeof out), PX_SCRAM_FAIL_PROTOCOL);
    CU_ASSERT_EQUAL(px_scram_server_first(&srv, with_nul, sizeof with_nul - 1, out, sizeof out),
                    PX_SCRAM_FAIL_PROTOCOL);
    /* a length past the terminator includes the NUL */
    CU_ASSERT_EQUAL(px_scram_server_first(&srv, "n,,n=,r=abc", 12, out, sizeof out),
                    PX_SCRAM_FAIL_PROTOCOL);
}

static void test_client_first_overlong_nonce_is_protocol_error(void)
{
    px_scram_server_t srv;
    px_secret_t s = parsed(RFC_VERIFIER);
    char msg[2048], out[512];

    /* our nonce buffer holds 95 client characters plus our 32 */
    memset(msg, 'a', sizeof msg);
    memcpy(msg, "n,,n=,r=", 8);
    msg[8 + 96] = '\0';
    CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
    CU_ASSERT_EQUAL(px_scram_server_first(&srv, msg, strlen(msg), out, sizeof out),
                    PX_SCRAM_FAIL_PROTOCOL);
    msg[8 + 95] = '\0';
    CU_ASSERT_EQUAL(px_scram_server_first(&srv, msg, strlen(msg), out, sizeof out), PX_SCRAM_OK);
    /* and a message bigger than any SCRAM message is refused outright */
    memset(msg, 'a', sizeof msg - 1);
    memcpy(msg, "n,,n=,r=", 8);
    msg[sizeof msg - 1] = '\0';
    CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
    CU_ASSERT_EQUAL(px_scram_server_first(&srv, msg, strlen(msg), out, sizeof out),
                    PX_SCRAM_FAIL_PROTOCOL);
}

static void test_client_first_ignores_username_and_extensions(void)
{
    static const char *good[] = {
        "n,,n=,r=abc",
        "n,,n=someone-else,r=abc",
        "n,,n=user=2Cname,r=abc",
        "n,,n=,r=abc,x=ext,y=more",
        "n,,n=,r=abc,",
        "y,,n=,r=abc",
    };
    char out[512];

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        px_scram_server_t srv;
        px_secret_t s = parsed(RFC_VERIFIER);
        CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
        CU_ASSERT_EQUAL(px_scram_server_first(&srv, good[i], strlen(good[i]), out, sizeof out),
                        PX_SCRAM_OK);
        CU_ASSERT(strncmp(out, "r=abc", 5) == 0);
        CU_ASSERT(strstr(out, ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096") != NULL);
        /* "r=abc" + 32 base64 characters of our own */
        CU_ASSERT_EQUAL(strchr(out, ',') - out, 2 + 3 + 32);
    }
}

static void test_client_final_malformed_is_protocol_error(void)
{
    static const char *bad[] = {
        "c=biws,r=%s",               /* missing proof */
        "c=biws,r=%s,",              /* missing proof */
        "c=eSws,r=%s,p=" ZERO_PROOF, /* binding flag differs from first */
        "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCwsAAAA,r=%s,p=" ZERO_PROOF, /* p= binding data */
        "c=biws,r=%sX,p=" ZERO_PROOF,                                /* nonce mismatch */
        "c=biws,r=X%s,p=" ZERO_PROOF,                                /* nonce mismatch */
        "c=biws,r=%s,p=!!!!",                                        /* bad base64 */
        "c=biws,r=%s,p=AAAA",                                        /* proof of the wrong length */
        "c=biws,r=%s,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 36 bytes */
        "c=biws,r=%s,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",      /* not whole quads */
        "c=biws,r=%s,p=" ZERO_PROOF ",x=1", /* garbage after the proof */
        "c=biws,r=%s,p=" ZERO_PROOF "junk", /* bad base64 */
        "r=%s,c=biws,p=" ZERO_PROOF,        /* wrong order */
        "c=biws,p=" ZERO_PROOF "%s",        /* no nonce */
        "c=biws,r=%s,1=x,p=" ZERO_PROOF,    /* attribute names are letters */
        "c=biws,r=%s,p",                    /* no '=' */
        "c=bi ws,r=%s,p=" ZERO_PROOF,
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        px_scram_server_t srv;
        char nonce[128], msg[512];
        server_after_first(&srv, "n,,n=,r=abc", nonce, sizeof nonce);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(msg, sizeof msg, bad[i], nonce);
#pragma GCC diagnostic pop
        px_scram_result_t r = server_final_str(&srv, msg);
        if (r != PX_SCRAM_FAIL_PROTOCOL)
            fprintf(stderr, "\n  bad client-final #%zu gave %s\n", i, px_scram_result_to_str(r));
        CU_ASSERT_EQUAL(r, PX_SCRAM_FAIL_PROTOCOL);
        CU_ASSERT_FALSE(srv.have_client_key);
    }
}

static void test_client_final_embedded_nul_or_empty_is_protocol_error(void)
{
    px_scram_server_t srv;
    char nonce[128], msg[512], out[128];
    int n;

    server_after_first(&srv, "n,,n=,r=abc", nonce, sizeof nonce);
    n = snprintf(msg, sizeof msg, "c=biws,r=%s,p=" ZERO_PROOF, nonce);
    msg[6] = '\0'; /* the ',' after c=biws */
    CU_ASSERT_EQUAL(px_scram_server_final(&srv, msg, (size_t)n, out, sizeof out),
                    PX_SCRAM_FAIL_PROTOCOL);
    server_after_first(&srv, "n,,n=,r=abc", nonce, sizeof nonce);
    CU_ASSERT_EQUAL(px_scram_server_final(&srv, "", 0, out, sizeof out), PX_SCRAM_FAIL_PROTOCOL);
}

static void test_client_final_extension_before_proof_is_accepted(void)
{
    px_scram_server_t srv;
    char nonce[128], msg[512];

    /* a well-formed message with an extension parses; the proof then decides */
    server_after_first(&srv, "n,,n=,r=abc", nonce, sizeof nonce);
    snprintf(msg, sizeof msg, "c=biws,r=%s,x=ext,p=" ZERO_PROOF, nonce);
    CU_ASSERT_EQUAL(server_final_str(&srv, msg), PX_SCRAM_FAIL_PROOF);
}

static void test_client_final_extension_is_part_of_auth_message(void)
{
    px_scram_server_t srv;
    px_secret_t s = parsed(RFC_VERIFIER);
    char out[512];
    const char *tampered =
        "c=biws,r=" RFC_NONCE ",x=1,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

    /* the RFC proof signed a message without "x=1", so adding it must break it */
    CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
    CU_ASSERT_EQUAL_FATAL(
        px_scram_server_first(&srv, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), out, sizeof out),
        PX_SCRAM_OK);
    strcpy(srv.nonce, RFC_NONCE);
    strcpy(srv.server_first, RFC_SERVER_FIRST);
    CU_ASSERT_EQUAL(server_final_str(&srv, tampered), PX_SCRAM_FAIL_PROOF);
}

static void test_server_steps_out_of_order_are_protocol_errors(void)
{
    px_scram_server_t srv;
    px_secret_t s = parsed(RFC_VERIFIER);
    char out[512];

    CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
    /* final before first */
    CU_ASSERT_EQUAL(server_final_str(&srv, RFC_CLIENT_FINAL), PX_SCRAM_FAIL_PROTOCOL);
    /* first twice */
    CU_ASSERT_EQUAL(
        px_scram_server_first(&srv, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), out, sizeof out),
        PX_SCRAM_OK);
    CU_ASSERT_EQUAL(
        px_scram_server_first(&srv, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), out, sizeof out),
        PX_SCRAM_FAIL_PROTOCOL);
    /* a finished exchange cannot be replayed */
    CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
    CU_ASSERT_EQUAL_FATAL(
        px_scram_server_first(&srv, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), out, sizeof out),
        PX_SCRAM_OK);
    strcpy(srv.nonce, RFC_NONCE);
    strcpy(srv.server_first, RFC_SERVER_FIRST);
    CU_ASSERT_EQUAL(server_final_str(&srv, RFC_CLIENT_FINAL), PX_SCRAM_OK);
    CU_ASSERT_EQUAL(server_final_str(&srv, RFC_CLIENT_FINAL), PX_SCRAM_FAIL_PROTOCOL);
}

static void test_server_outputs_are_bounded_by_outlen(void)
{
    px_scram_server_t srv;
    px_secret_t s = parsed(RFC_VERIFIER);
    char big[512];
    /* exactly "r=abc<32>,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096" + NUL = 72 */
    const size_t need = 2 + 3 + 32 + 27 + 7 + 1;

    CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
    char *tight = malloc(need - 1);
    CU_ASSERT_FATAL(tight != NULL);
    CU_ASSERT_EQUAL(px_scram_server_first(&srv, "n,,n=,r=abc", 11, tight, need - 1),
                    PX_SCRAM_FAIL_PROTOCOL);
    free(tight);
    char *exact = malloc(need);
    CU_ASSERT_FATAL(exact != NULL);
    CU_ASSERT_EQUAL(px_scram_server_first(&srv, "n,,n=,r=abc", 11, exact, need), PX_SCRAM_OK);
    CU_ASSERT_EQUAL(strlen(exact), need - 1);
    free(exact);

    /* server-final needs 2 + 44 + 1 */
    CU_ASSERT_FATAL(px_scram_server_init(&srv, &s));
    CU_ASSERT_EQUAL_FATAL(
        px_scram_server_first(&srv, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), big, sizeof big),
        PX_SCRAM_OK);
    strcpy(srv.nonce, RFC_NONCE);
    strcpy(srv.server_first, RFC_SERVER_FIRST);
    char *small = malloc(46);
    CU_ASSERT_FATAL(small != NULL);
    CU_ASSERT_EQUAL(
        px_scram_server_final(&srv, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL), small, 46),
        PX_SCRAM_FAIL_PROTOCOL);
    CU_ASSERT_FALSE(srv.have_client_key);
    free(small);
    CU_ASSERT_EQUAL(px_scram_server_first(&srv, RFC_CLIENT_FIRST, 1, big, 0),
                    PX_SCRAM_FAIL_PROTOCOL);
}

/* ---- SCRAM client: malformed input -------------------------------------------- */

static void client_after_first(px_scram_client_t *cli, const char *password)
{
    char m1[128];
    px_scram_client_init_password(cli, password);
    CU_ASSERT_FATAL(px_scram_client_first(cli, m1, sizeof m1) > 0);
    CU_ASSERT(strncmp(m1, "n,,n=,r=", 8) == 0);
    CU_ASSERT_EQUAL(strlen(cli->client_nonce), 32);
}

static void test_client_first_message_has_empty_user_and_fresh_nonce(void)
{
    px_scram_client_t a, b;
    char m1[128], m2[128];

    px_scram_client_init_password(&a, "x");
    px_scram_client_init_password(&b, "x");
    CU_ASSERT_EQUAL(px_scram_client_first(&a, m1, sizeof m1), 8 + 32);
    CU_ASSERT_EQUAL(px_scram_client_first(&b, m2, sizeof m2), 8 + 32);
    CU_ASSERT(strncmp(m1, "n,,n=,r=", 8) == 0);
    CU_ASSERT(strcmp(m1, m2) != 0);
    CU_ASSERT_STRING_EQUAL(a.client_first_bare, m1 + 3);
}

static void test_client_rejects_malformed_server_first(void)
{
    static const char *bad[] = {
        "r=someoneelse%s,s=QUJD,i=4096", /* does not start with our nonce */
        "r=%s,s=QUJD,i=4096",            /* server added nothing */
        "r=%sxyz,i=4096",                /* no salt */
        "r=%sxyz,s=Q,i=4096",            /* bad base64 */
        "r=%sxyz,s=QUJD,i=0",
        "r=%sxyz,s=QUJD,i=-1",
        "r=%sxyz,s=QUJD,i=+5",
        "r=%sxyz,s=QUJD,i=abc",
        "r=%sxyz,s=QUJD,i=99999999999",
        "r=%sxyz,s=QUJD,i=",
        "r=%sxyz,s=QUJD",            /* no iterations */
        "r=%sxyz,s=QUJD,i=4096,x=1", /* garbage after */
        "s=QUJD,r=%sxyz,i=4096",     /* order */
        "r=%sx z,s=QUJD,i=4096",     /* nonce not printable */
        "e=other-error%s",
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        px_scram_client_t cli;
        char msg[256], out[256];
        size_t used = 99;
        client_after_first(&cli, "pw");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(msg, sizeof msg, bad[i], cli.client_nonce);
#pragma GCC diagnostic pop
        px_scram_result_t r = px_scram_client_final(&cli, msg, strlen(msg), out, sizeof out, &used);
        if (r != PX_SCRAM_FAIL_PROTOCOL)
            fprintf(stderr, "\n  accepted bad server-first #%zu\n", i);
        CU_ASSERT_EQUAL(r, PX_SCRAM_FAIL_PROTOCOL);
        CU_ASSERT_EQUAL(used, 0);
        CU_ASSERT_STRING_EQUAL(out, "");
    }
}

static void test_client_final_before_first_and_nul_are_protocol_errors(void)
{
    px_scram_client_t cli;
    char msg[256], out[256];
    size_t used;
    int n;

    px_scram_client_init_password(&cli, "pw");
    CU_ASSERT_EQUAL(px_scram_client_final(&cli, "r=abc,s=QUJD,i=1", 16, out, sizeof out, &used),
                    PX_SCRAM_FAIL_PROTOCOL);
    client_after_first(&cli, "pw");
    n = snprintf(msg, sizeof msg, "r=%sxyz,s=QUJD,i=1", cli.client_nonce);
    msg[n - 4] = '\0';
    CU_ASSERT_EQUAL(px_scram_client_final(&cli, msg, (size_t)n, out, sizeof out, &used),
                    PX_SCRAM_FAIL_PROTOCOL);
    CU_ASSERT_EQUAL(px_scram_client_final(&cli, msg, 0, out, sizeof out, &used),
                    PX_SCRAM_FAIL_PROTOCOL);
}

static void test_client_rejects_malformed_or_wrong_server_final(void)
{
    px_scram_client_t cli;
    char msg[256], out[256];
    size_t used;

    client_after_first(&cli, "pencil");
    /* no server-first yet: nothing to verify against */
    CU_ASSERT_EQUAL(px_scram_client_verify(&cli, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL)),
                    PX_SCRAM_FAIL_PROTOCOL);

    px_scram_client_init_password(&cli, "pencil");
    strcpy(cli.client_nonce, RFC_CNONCE);
    strcpy(cli.client_first_bare, RFC_CLIENT_BARE);
    CU_ASSERT_EQUAL_FATAL(px_scram_client_final(&cli, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST),
                                                out, sizeof out, &used),
                          PX_SCRAM_OK);
    static const struct {
        const char *msg;
        px_scram_result_t want;
    } cases[] = {
        {"e=invalid-proof", PX_SCRAM_FAIL_PROOF},
        {"v=" ZERO_PROOF, PX_SCRAM_FAIL_PROOF},
        {"v=!!!", PX_SCRAM_FAIL_PROTOCOL},
        {"v=AAAA", PX_SCRAM_FAIL_PROTOCOL},
        {"x=" ZERO_PROOF, PX_SCRAM_FAIL_PROTOCOL},
        {RFC_SERVER_FINAL ",x=1", PX_SCRAM_FAIL_PROTOCOL},
        {"", PX_SCRAM_FAIL_PROTOCOL},
        {RFC_SERVER_FINAL, PX_SCRAM_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CU_ASSERT_EQUAL(px_scram_client_verify(&cli, cases[i].msg, strlen(cases[i].msg)),
                        cases[i].want);
    strcpy(msg, RFC_SERVER_FINAL);
    CU_ASSERT_EQUAL(px_scram_client_verify(&cli, msg, strlen(msg) + 1), PX_SCRAM_FAIL_PROTOCOL);
}

static void test_client_outputs_are_bounded_by_outlen(void)
{
    px_scram_client_t cli;
    size_t used = 99;

    px_scram_client_init_password(&cli, "x");
    char *tiny = malloc(40); /* "n,,n=,r=" + 32 needs 41 */
    CU_ASSERT_FATAL(tiny != NULL);
    CU_ASSERT_EQUAL(px_scram_client_first(&cli, tiny, 40), 0);
    CU_ASSERT_STRING_EQUAL(tiny, "");
    free(tiny);
    CU_ASSERT_EQUAL(px_scram_client_first(&cli, NULL, 10), 0);

    px_scram_client_init_password(&cli, "pencil");
    strcpy(cli.client_nonce, RFC_CNONCE);
    strcpy(cli.client_first_bare, RFC_CLIENT_BARE);
    size_t need = strlen(RFC_CLIENT_FINAL) + 1;
    char *small = malloc(need - 1);
    CU_ASSERT_FATAL(small != NULL);
    CU_ASSERT_EQUAL(px_scram_client_final(&cli, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), small,
                                          need - 1, &used),
                    PX_SCRAM_FAIL_PROTOCOL);
    CU_ASSERT_EQUAL(used, 0);
    free(small);
    char *exact = malloc(need);
    CU_ASSERT_FATAL(exact != NULL);
    CU_ASSERT_EQUAL(
        px_scram_client_final(&cli, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), exact, need, &used),
        PX_SCRAM_OK);
    CU_ASSERT_STRING_EQUAL(exact, RFC_CLIENT_FINAL);
    free(exact);
}

static void test_client_with_keys_ignores_server_salt_and_iterations(void)
{
    px_scram_client_t cli;
    px_secret_t s = parsed(RFC_VERIFIER);
    char out[256];
    size_t used;

    /* with keys, i= costs nothing: a huge count must not run PBKDF2 */
    px_scram_client_init_keys(&cli, rfc_client_key, s.server_key);
    strcpy(cli.client_nonce, RFC_CNONCE);
    strcpy(cli.client_first_bare, RFC_CLIENT_BARE);
    const char *first = "r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    CU_ASSERT_EQUAL_FATAL(px_scram_client_final(&cli, first, strlen(first), out, sizeof out, &used),
                          PX_SCRAM_OK);
    CU_ASSERT_STRING_EQUAL(out, RFC_CLIENT_FINAL);
    CU_ASSERT_EQUAL(px_scram_client_verify(&cli, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL)),
                    PX_SCRAM_OK);
    const char *huge = "r=" RFC_NONCE ",s=AAAA,i=2000000000";
    CU_ASSERT_EQUAL(px_scram_client_final(&cli, huge, strlen(huge), out, sizeof out, &used),
                    PX_SCRAM_OK);
}

/* ---- verifiers and secrets ---------------------------------------------------- */

static void test_make_verifier_parses_and_honours_iterations(void)
{
    char v[256], v2[256];
    px_secret_t s;

    CU_ASSERT_FATAL(px_scram_make_verifier("pw", 0, v, sizeof v));
    CU_ASSERT(strncmp(v, "SCRAM-SHA-256$4096:", 19) == 0);
    CU_ASSERT_FATAL(px_scram_make_verifier("pw", 0, v2, sizeof v2));
    CU_ASSERT(strcmp(v, v2) != 0); /* random salt */
    CU_ASSERT_FATAL(px_scram_make_verifier("pw", 17, v, sizeof v));
    CU_ASSERT(strncmp(v, "SCRAM-SHA-256$17:", 17) == 0);
    CU_ASSERT_FATAL(px_secret_parse(v, &s));
    CU_ASSERT_EQUAL(s.iterations, 17);
    CU_ASSERT_EQUAL(s.salt_len, 16);
    /* "SCRAM-SHA-256$17:" 17 + salt 24 + "$" + 44 + ":" + 44 = 131 */
    CU_ASSERT_EQUAL(strlen(v), 131);
    CU_ASSERT_FALSE(px_scram_make_verifier("pw", 17, v2, 131));
    CU_ASSERT_STRING_EQUAL(v2, "");
    CU_ASSERT(px_scram_make_verifier("pw", 17, v2, 132));
}

static void test_secret_parse_classifies_kinds(void)
{
    px_secret_t s;

    CU_ASSERT(px_secret_parse("", &s) && s.kind == PX_SECRET_NONE);
    CU_ASSERT(px_secret_parse("md53175bce1d3201d16594cebf9d7eb3f9d", &s) &&
              s.kind == PX_SECRET_MD5);
    CU_ASSERT_STRING_EQUAL(s.text, "md53175bce1d3201d16594cebf9d7eb3f9d");
    /* not quite md5: uppercase, short, long, non-hex: all plain passwords */
    CU_ASSERT(px_secret_parse("md53175BCE1D3201D16594CEBF9D7EB3F9D", &s) &&
              s.kind == PX_SECRET_PLAIN);
    CU_ASSERT(px_secret_parse("md53175bce1d3201d16594cebf9d7eb3f9", &s) &&
              s.kind == PX_SECRET_PLAIN);
    CU_ASSERT(px_secret_parse("md53175bce1d3201d16594cebf9d7eb3f9d0", &s) &&
              s.kind == PX_SECRET_PLAIN);
    CU_ASSERT(px_secret_parse("md53175bce1d3201d16594cebf9d7eb3f9g", &s) &&
              s.kind == PX_SECRET_PLAIN);
    CU_ASSERT(px_secret_parse("SCRAM-SHA-256", &s) && s.kind == PX_SECRET_PLAIN);
    CU_ASSERT(px_secret_parse("hunter2", &s) && s.kind == PX_SECRET_PLAIN);
    CU_ASSERT_STRING_EQUAL(s.text, "hunter2");
    CU_ASSERT(px_secret_parse(RFC_VERIFIER, &s) && s.kind == PX_SECRET_SCRAM);
}

static void test_secret_parse_rejects_malformed_verifiers(void)
{
    static const char *bad[] = {
        "SCRAM-SHA-256$",
        "SCRAM-SHA-256$4096",
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==",
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
        "SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "SCRAM-SHA-256$-1:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "SCRAM-SHA-256$40x6:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", /* salt not whole quads */
        "SCRAM-SHA-256$4096:$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", /* empty salt */
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY:"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", /* stored key bad base64 */
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", /* stored key short */
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=:", /* trailing junk */
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU= ", /* trailing space */
    };
    px_secret_t s;
    char longsalt[256];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool ok = px_secret_parse(bad[i], &s);
        if (ok)
            fprintf(stderr, "\n  accepted bad verifier #%zu\n", i);
        CU_ASSERT_FALSE(ok);
        CU_ASSERT_EQUAL(s.kind, PX_SECRET_NONE);
    }
    /* a salt over 64 bytes does not fit px_secret_t */
    snprintf(
        longsalt, sizeof longsalt,
        "SCRAM-SHA-256$4096:%s$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    CU_ASSERT_FALSE(px_secret_parse(longsalt, &s));
    /* too long to store */
    char huge[PX_AUTH_SECRET_MAX + 1];
    memset(huge, 'x', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    CU_ASSERT_FALSE(px_secret_parse(huge, &s));
    huge[sizeof huge - 2] = '\0';
    CU_ASSERT(px_secret_parse(huge, &s) && s.kind == PX_SECRET_PLAIN);
}

/* ---- md5 ------------------------------------------------------------------------ */

static void test_md5_hash_password_known_value(void)
{
    char out[36];

    px_md5_hash_password("postgres", "postgres", out);
    CU_ASSERT_STRING_EQUAL(out, "md53175bce1d3201d16594cebf9d7eb3f9d");
}

static void test_md5_salted_known_value(void)
{
    const uint8_t salt[4] = {1, 2, 3, 4};
    char out[36];

    px_md5_salted("md53175bce1d3201d16594cebf9d7eb3f9d", salt, out);
    CU_ASSERT_STRING_EQUAL(out, "md568be9ed08db75f318087ab337aaea044");
    const char not_md5[36] = "xyz3175bce1d3201d16594cebf9d7eb3f9d";
    px_md5_salted(not_md5, salt, out);
    CU_ASSERT_STRING_EQUAL(out, ""); /* not an md5 secret */
}

static void test_md5_verify_accepts_plain_and_md5_secrets_only(void)
{
    const uint8_t salt[4] = {1, 2, 3, 4};
    const char *answer = "md568be9ed08db75f318087ab337aaea044";
    px_secret_t plain = parsed("postgres");
    px_secret_t md5 = parsed("md53175bce1d3201d16594cebf9d7eb3f9d");
    px_secret_t scram = parsed(RFC_VERIFIER);
    px_secret_t none = parsed("");
    const uint8_t other_salt[4] = {1, 2, 3, 5};

    CU_ASSERT(px_md5_verify(&plain, "postgres", salt, answer));
    CU_ASSERT(px_md5_verify(&md5, "postgres", salt, answer));
    CU_ASSERT_FALSE(px_md5_verify(&plain, "other", salt, answer));
    CU_ASSERT_FALSE(px_md5_verify(&md5, "postgres", other_salt, answer));
    CU_ASSERT_FALSE(px_md5_verify(&md5, "postgres", salt, "md568be9ed08db75f318087ab337aaea045"));
    CU_ASSERT_FALSE(px_md5_verify(&md5, "postgres", salt, "md568be9ed08db75f318087ab337aaea04"));
    CU_ASSERT_FALSE(px_md5_verify(&md5, "postgres", salt, "md568be9ed08db75f318087ab337aaea0440"));
    CU_ASSERT_FALSE(px_md5_verify(&md5, "postgres", salt, ""));
    CU_ASSERT_FALSE(px_md5_verify(&scram, "postgres", salt, answer));
    CU_ASSERT_FALSE(px_md5_verify(&none, "postgres", salt, answer));
}

/* ---- auth file ------------------------------------------------------------------ */

static void test_authfile_parses_quotes_comments_and_blank_lines(void)
{
    const char *text = "; a comment\n"
                       "# another comment\n"
                       "\n"
                       "   \t\n"
                       "\"alice\" \"md53175bce1d3201d16594cebf9d7eb3f9d\"\n"
                       "  \"bob\"\t\t\"pa\"\"ss word\"   trailing words are ignored\n"
                       "\"we\"\"ird\" \"x\"\r\n"
                       "  ; indented comment\n"
                       "\"carol\" \"" RFC_VERIFIER "\"\n"
                       "\"eve\" \"\""; /* last line without newline, empty secret */
    char err[128] = "unchanged";
    px_authfile_t *af = px_authfile_parse(text, err, sizeof err);

    CU_ASSERT_FATAL(af != NULL);
    CU_ASSERT_STRING_EQUAL(err, "");
    CU_ASSERT_EQUAL(px_authfile_count(af), 5);
    const px_secret_t *s = px_authfile_lookup(af, "alice");
    CU_ASSERT(s && s->kind == PX_SECRET_MD5);
    s = px_authfile_lookup(af, "bob");
    CU_ASSERT(s && s->kind == PX_SECRET_PLAIN && strcmp(s->text, "pa\"ss word") == 0);
    s = px_authfile_lookup(af, "we\"ird");
    CU_ASSERT(s && strcmp(s->text, "x") == 0);
    s = px_authfile_lookup(af, "carol");
    CU_ASSERT(s && s->kind == PX_SECRET_SCRAM && s->iterations == 4096);
    s = px_authfile_lookup(af, "eve");
    CU_ASSERT(s && s->kind == PX_SECRET_NONE);
    CU_ASSERT(px_authfile_lookup(af, "mallory") == NULL);
    CU_ASSERT(px_authfile_lookup(af, "Alice") == NULL);
    CU_ASSERT(px_authfile_lookup(af, NULL) == NULL);
    px_authfile_free(af);
}

static void test_authfile_errors_name_the_line_never_the_secret(void)
{
    static const struct {
        const char *text;
        const char *want; /* expected error prefix */
    } cases[] = {
        {"\"u\" \"topsecret\"\nu2 \"topsecret\"\n",
         "auth file line 2: expected a quoted user name"},
        {"\"u\" topsecret\n", "auth file line 1: expected a quoted secret"},
        {"\"u\"\n\"topsecret\"\n", "auth file line 1: expected a quoted secret"},
        {"\n\n\"u\" \"topsecret\n\"", "auth file line 3: unterminated quoted secret"},
        {"\"u \"topsecret\"", "auth file line 1: expected a quoted secret"},
        {"\"unterminated\n", "auth file line 1: unterminated quoted user name"},
        /* with "" an escape, "dave""pw" is the one field dave"pw */
        {"\"dave\"\"pw\"\n", "auth file line 1: expected a quoted secret"},
        {"\"\" \"topsecret\"", "auth file line 1: empty user name"},
        {"\"u\" \"SCRAM-SHA-256$4096:topsecret\"", "auth file line 1: malformed SCRAM"},
        {"\"0123456789012345678901234567890123456789012345678901234567890123\" \"topsecret\"",
         "auth file line 1: user name too long"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[160] = "";
        px_authfile_t *af = px_authfile_parse(cases[i].text, err, sizeof err);
        CU_ASSERT(af == NULL);
        px_authfile_free(af);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
            fprintf(stderr, "\n  case %zu: got \"%s\"\n", i, err);
        CU_ASSERT(strncmp(err, cases[i].want, strlen(cases[i].want)) == 0);
        CU_ASSERT(strstr(err, "topsecret") == NULL);
    }
}

static void test_authfile_length_limits_are_exact(void)
{
    char text[1200], err[128];
    px_authfile_t *af;

    /* 63-byte user and 511-byte secret fit; one more does not */
    snprintf(text, sizeof text, "\"%063d\" \"%0511d\"", 0, 0);
    af = px_authfile_parse(text, err, sizeof err);
    CU_ASSERT(af != NULL && px_authfile_count(af) == 1);
    px_authfile_free(af);
    snprintf(text, sizeof text, "\"u\" \"%0512d\"", 0);
    af = px_authfile_parse(text, err, sizeof err);
    CU_ASSERT(af == NULL);
    CU_ASSERT(strstr(err, "line 1: secret too long") != NULL);
}

static void test_authfile_duplicate_user_last_line_wins(void)
{
    const char *text = "\"u\" \"first\"\n\"v\" \"x\"\n\"u\" \"second\"\n";
    char err[128];
    px_authfile_t *af = px_authfile_parse(text, err, sizeof err);

    CU_ASSERT_FATAL(af != NULL);
    CU_ASSERT_EQUAL(px_authfile_count(af), 2);
    const px_secret_t *s = px_authfile_lookup(af, "u");
    CU_ASSERT(s && strcmp(s->text, "second") == 0);
    px_authfile_free(af);
}

static void test_authfile_empty_text_has_no_users(void)
{
    char err[128];
    px_authfile_t *af = px_authfile_parse("", err, sizeof err);

    CU_ASSERT_FATAL(af != NULL);
    CU_ASSERT_EQUAL(px_authfile_count(af), 0);
    CU_ASSERT(px_authfile_lookup(af, "anyone") == NULL);
    px_authfile_free(af);
    CU_ASSERT(px_authfile_parse(NULL, err, sizeof err) == NULL);
    px_authfile_free(NULL);
    CU_ASSERT_EQUAL(px_authfile_count(NULL), 0);
}

static void test_authfile_finds_every_one_of_many_users(void)
{
    enum { N = 5000 };
    size_t cap = (size_t)N * 40;
    char *text = malloc(cap);
    size_t off = 0;
    char err[128], name[32], want[32];

    CU_ASSERT_FATAL(text != NULL);
    for (int i = 0; i < N; i++)
        off += (size_t)snprintf(text + off, cap - off, "\"user%d\" \"pw%d\"\n", i, i);
    px_authfile_t *af = px_authfile_parse(text, err, sizeof err);
    free(text);
    CU_ASSERT_FATAL(af != NULL);
    CU_ASSERT_EQUAL(px_authfile_count(af), N);
    int found = 0;
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "user%d", i);
        snprintf(want, sizeof want, "pw%d", i);
        const px_secret_t *s = px_authfile_lookup(af, name);
        found += s && strcmp(s->text, want) == 0;
    }
    CU_ASSERT_EQUAL(found, N);
    CU_ASSERT(px_authfile_lookup(af, "user5000") == NULL);
    px_authfile_free(af);
}

static void test_authfile_load_reads_file_and_reports_problems(void)
{
    char path[] = "/tmp/test_auth_XXXXXX";
    char err[256];
    int fd = mkstemp(path);
    const char body[] = "\"a\" \"b\"\n\"c\" \"d\"\n";

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(write(fd, body, sizeof body - 1) == (ssize_t)(sizeof body - 1));
    px_authfile_t *af = px_authfile_load(path, err, sizeof err);
    CU_ASSERT(af != NULL && px_authfile_count(af) == 2);
    px_authfile_free(af);

    /* a NUL byte on line 3 */
    CU_ASSERT_FATAL(write(fd, "\"e\" \"f\0\"\n", 9) == 9);
    af = px_authfile_load(path, err, sizeof err);
    CU_ASSERT(af == NULL);
    CU_ASSERT(strstr(err, "line 3: NUL byte") != NULL);
    close(fd);
    unlink(path);

    af = px_authfile_load(path, err, sizeof err);
    CU_ASSERT(af == NULL);
    CU_ASSERT(strstr(err, "No such file") != NULL);
    af = px_authfile_load("/tmp", err, sizeof err);
    CU_ASSERT(af == NULL);
    CU_ASSERT(strstr(err, "not a regular file") != NULL);
}

/* ---- misc ------------------------------------------------------------------------ */

static void test_consttime_eq_compares_bytes(void)
{
    CU_ASSERT(px_auth_consttime_eq("abc", "abc", 3));
    CU_ASSERT_FALSE(px_auth_consttime_eq("abc", "abd", 3));
    CU_ASSERT(px_auth_consttime_eq("abc", "abd", 2));
    CU_ASSERT(px_auth_consttime_eq("x", "y", 0));
}

static void test_result_to_str_names_every_result(void)
{
    CU_ASSERT_STRING_EQUAL(px_scram_result_to_str(PX_SCRAM_OK), "ok");
    CU_ASSERT_STRING_EQUAL(px_scram_result_to_str(PX_SCRAM_FAIL_PROOF), "authentication failed");
    CU_ASSERT_STRING_EQUAL(px_scram_result_to_str(PX_SCRAM_FAIL_PROTOCOL), "protocol violation");
}

/* ---- runner ---------------------------------------------------------------------- */

#define TEST(fn)                                                                                   \
    {                                                                                              \
#fn, fn                                                                                    \
    }

int main(void)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        TEST(test_rfc7677_verifier_parses_to_its_keys),
        TEST(test_rfc7677_client_sends_vector_proof_and_accepts_vector_signature),
        TEST(test_rfc7677_server_accepts_vector_proof_and_recovers_client_key),
        TEST(test_postgres15_verifiers_accept_their_passwords),
        TEST(test_postgres15_verifier_rejects_wrong_password),
        TEST(test_plain_secret_round_trip_succeeds),
        TEST(test_plain_secret_gets_fresh_salt_each_exchange),
        TEST(test_verifier_round_trip_succeeds),
        TEST(test_wrong_password_fails_proof_without_client_key),
        TEST(test_recovered_client_key_logs_in_to_second_server),
        TEST(test_recovered_client_key_logs_in_to_postgres15_verifier),
        TEST(test_keys_login_rejects_server_without_matching_server_key),
        TEST(test_keys_login_with_wrong_client_key_fails_proof),
        TEST(test_y_flag_client_completes_with_matching_binding),
        TEST(test_mock_exchange_fails_proof_with_stable_salt),
        TEST(test_server_init_refuses_md5_and_none_secrets),
        TEST(test_client_first_malformed_is_protocol_error),
        TEST(test_client_first_empty_or_embedded_nul_is_protocol_error),
        TEST(test_client_first_overlong_nonce_is_protocol_error),
        TEST(test_client_first_ignores_username_and_extensions),
        TEST(test_client_final_malformed_is_protocol_error),
        TEST(test_client_final_embedded_nul_or_empty_is_protocol_error),
        TEST(test_client_final_extension_before_proof_is_accepted),
        TEST(test_client_final_extension_is_part_of_auth_message),
        TEST(test_server_steps_out_of_order_are_protocol_errors),
        TEST(test_server_outputs_are_bounded_by_outlen),
        TEST(test_client_first_message_has_empty_user_and_fresh_nonce),
        TEST(test_client_rejects_malformed_server_first),
        TEST(test_client_final_before_first_and_nul_are_protocol_errors),
        TEST(test_client_rejects_malformed_or_wrong_server_final),
        TEST(test_client_outputs_are_bounded_by_outlen),
        TEST(test_client_with_keys_ignores_server_salt_and_iterations),
        TEST(test_make_verifier_parses_and_honours_iterations),
        TEST(test_secret_parse_classifies_kinds),
        TEST(test_secret_parse_rejects_malformed_verifiers),
        TEST(test_md5_hash_password_known_value),
        TEST(test_md5_salted_known_value),
        TEST(test_md5_verify_accepts_plain_and_md5_secrets_only),
        TEST(test_authfile_parses_quotes_comments_and_blank_lines),
        TEST(test_authfile_errors_name_the_line_never_the_secret),
        TEST(test_authfile_length_limits_are_exact),
        TEST(test_authfile_duplicate_user_last_line_wins),
        TEST(test_authfile_empty_text_has_no_users),
        TEST(test_authfile_finds_every_one_of_many_users),
        TEST(test_authfile_load_reads_file_and_reports_problems),
        TEST(test_consttime_eq_compares_bytes),
        TEST(test_result_to_str_names_every_result),
    };
    unsigned failures;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite("auth", NULL, NULL);
    if (!suite)
        goto fail;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!CU_add_test(suite, tests[i].name, tests[i].fn))
            goto fail;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (CU_basic_run_tests() != CUE_SUCCESS)
        goto fail;
    failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failures ? 1 : 0;
fail:
    CU_cleanup_registry();
    return 2;
}
