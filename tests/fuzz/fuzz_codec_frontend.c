/*
 * libFuzzer target: a client-to-proxy byte stream after startup. The first
 * byte picks the body cap; the rest is walked message by message and every
 * body parser is run on every body.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const uint32_t caps[] = {1u << 20, 0, 4, 64, 1024, UINT32_MAX, 0x7ffffffbu, 1u << 30};
    uint32_t max_body = caps[data[0] & 7];
    (void)fuzz_walk_messages(data + 1, size - 1, max_body, px_codec_frontend_name);
    return 0;
}
