/*
 * parser_id.c - the parser's last event ID as the user reads and sets it
 * (the id: field itself is parsed in parser.c; parser_int.h explains the
 * committed string and the buffer).
 */
#include <string.h>

#include "alloc.h"
#include "parser_int.h"

const char *es_parser_last_event_id(const es_parser *p, size_t *len) {
  if (len)
    *len = p->idstr.len;
  if (!p->idstr.p)
    return "";
  /* idstr is kept NUL-terminated by every writer */
  return p->idstr.p;
}

int es_parser_set_last_event_id(es_parser *p, const char *id, size_t len) {
  if (!id)
    len = 0;
  if (len && memchr(id, 0, len))
    return -1;
  /* The new value goes into the buffer (free: setting the string sets the
   * buffer too), which is then swapped in; but never into the memory of the
   * id handed to a running on_event, which must stay valid. */
  es_buf *nb = &p->idbuf;
  if (p->lent_id && p->idbuf.p == p->lent_id)
    nb = &p->idstr; /* a second call from the same callback */
  const unsigned char *s = (const unsigned char *)id;
  if (es_utf8_valid_prefix(s, len) == len) {
    size_t old_len = nb->len;
    nb->len = 0;
    if (es_buf_reserve(nb, len, 0)) {
      nb->len = old_len;
      return -1;
    }
    if (len)
      memcpy(nb->p, id, len);
    nb->len = len;
  } else {
    /* invalid UTF-8: decoded with U+FFFD replacements into a new buffer */
    es_buf tmp = {NULL, 0, 0};
    if (es_parser_decode_whole(p, &tmp, id, len) != 0) {
      es_free(tmp.p);
      return -1;
    }
    es_free(nb->p);
    *nb = tmp;
  }
  nb->p[nb->len] = '\0';
  if (nb == &p->idbuf)
    es_buf_swap(&p->idstr, &p->idbuf);
  p->id_dirty = 0;
  return 0;
}
