/* utf8.c - the tables of utf8.h's validator and decoder. */
#include "utf8.h"

/* For each lead byte: the sequence length (0: cannot start one) and the
 * range allowed for the second byte, as len | lo << 8 | hi << 16 (the
 * WHATWG decoder's "UTF-8 lower/upper boundary"). */
#define U2 (2u | 0x80u << 8 | 0xBFu << 16)
#define U3 (3u | 0x80u << 8 | 0xBFu << 16)
#define U4 (4u | 0x80u << 8 | 0xBFu << 16)
#define R4(x) x, x, x, x
#define R16(x) R4(x), R4(x), R4(x), R4(x)
const uint32_t es_utf8_lead[256] = {
    R16(1), R16(1), R16(1), R16(1), R16(1), R16(1), R16(1), R16(1), /* 00-7F */
    R16(0), R16(0), R16(0), R16(0),                                 /* 80-BF */
    0, 0, U2, U2, R4(U2), R4(U2), R4(U2),                           /* C0-CF */
    R16(U2),                                                        /* D0-DF */
    3u | 0xA0u << 8 | 0xBFu << 16, U3, U3, U3, R4(U3), R4(U3), U3,  /* E0-EC */
    3u | 0x80u << 8 | 0x9Fu << 16, U3, U3,                          /* ED-EF */
    4u | 0x90u << 8 | 0xBFu << 16, U4, U4, U4,                      /* F0-F3 */
    4u | 0x80u << 8 | 0x8Fu << 16, 0, 0, 0, R4(0), R4(0),           /* F4-FF */
};
_Static_assert(sizeof es_utf8_lead / sizeof es_utf8_lead[0] == 256, "es_utf8_lead has 256 entries");

#define DT(state, next) ((uint64_t)(next) << (state))
#define DROW(acc, c1, c2, c3, e0, ed, f0, f4)                                  \
  (DT(S_ACC, acc) | DT(S_REJ, S_REJ) | DT(S_C1, c1) | DT(S_C2, c2) |          \
   DT(S_C3, c3) | DT(S_E0, e0) | DT(S_ED, ed) | DT(S_F0, f0) | DT(S_F4, f4))
#define D_ASCII DROW(S_ACC, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ)
#define D_80 DROW(S_REJ, S_ACC, S_C1, S_C2, S_REJ, S_C1, S_REJ, S_C2)
#define D_90 DROW(S_REJ, S_ACC, S_C1, S_C2, S_REJ, S_C1, S_C2, S_REJ)
#define D_A0 DROW(S_REJ, S_ACC, S_C1, S_C2, S_C1, S_REJ, S_C2, S_REJ)
#define D_BAD DROW(S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ)
#define D_LEAD(next) DROW(next, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ)
const uint64_t es_utf8_dfa[256] = {
    R16(D_ASCII), R16(D_ASCII), R16(D_ASCII), R16(D_ASCII),          /* 00-3F */
    R16(D_ASCII), R16(D_ASCII), R16(D_ASCII), R16(D_ASCII),          /* 40-7F */
    R16(D_80), R16(D_90), R16(D_A0), R16(D_A0),                      /* 80-BF */
    D_BAD, D_BAD, D_LEAD(S_C1), D_LEAD(S_C1), R4(D_LEAD(S_C1)),      /* C0-C7 */
    R4(D_LEAD(S_C1)), R4(D_LEAD(S_C1)), R16(D_LEAD(S_C1)),           /* C8-DF */
    D_LEAD(S_E0), D_LEAD(S_C2), D_LEAD(S_C2), D_LEAD(S_C2),          /* E0-E3 */
    R4(D_LEAD(S_C2)), R4(D_LEAD(S_C2)),                              /* E4-EB */
    D_LEAD(S_C2), D_LEAD(S_ED), D_LEAD(S_C2), D_LEAD(S_C2),          /* EC-EF */
    D_LEAD(S_F0), D_LEAD(S_C3), D_LEAD(S_C3), D_LEAD(S_C3),          /* F0-F3 */
    D_LEAD(S_F4), D_BAD, D_BAD, D_BAD, R4(D_BAD), R4(D_BAD),         /* F4-FF */
};
_Static_assert(sizeof es_utf8_dfa / sizeof es_utf8_dfa[0] == 256, "es_utf8_dfa has 256 entries");
