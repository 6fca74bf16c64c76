/* OAR's property filters on node labels: a recursive-descent evaluator over
 * the text (job_props.h has the grammar). Every part of the expression is
 * parsed even when the result is already known, so a syntax error anywhere
 * is found whatever the node. */
#include "model/job_props.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/json_get.h"

/* Most nested parentheses and NOTs. */
#define MAX_DEPTH 64
#define MAX_TOKEN 256

struct props {
    const char *text; /* the whole expression, for columns */
    const char *p;    /* next character */
    json_t *node;     /* NULL: syntax only */
    struct serr *err;
    int depth;
};

static int fail(struct props *s, const char *what)
{
    return serr_set(s->err, SERR_INVALID, "invalid property filter \"%s\": %s at column %d",
                    s->text, what, (int)(s->p - s->text) + 1);
}

static void skip_space(struct props *s)
{
    while (isspace((unsigned char)*s->p))
        s->p++;
}

static bool word_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-' || c == '/' || c == ':';
}

/* Consumes the keyword `kw` (any case) when it is the next whole word. */
static bool keyword(struct props *s, const char *kw)
{
    skip_space(s);
    size_t n = strlen(kw);
    if (strncasecmp(s->p, kw, n) != 0 || word_char(s->p[n]))
        return false;
    s->p += n;
    return true;
}

/* A key or bare value into buf: letters, digits and _ . - / : */
static int read_word(struct props *s, char *buf, const char *what)
{
    skip_space(s);
    size_t n = 0;
    while (word_char(s->p[n]) && n < MAX_TOKEN - 1)
        n++;
    if (n == 0)
        return fail(s, what);
    if (word_char(s->p[n]))
        return fail(s, "word too long");
    memcpy(buf, s->p, n);
    buf[n] = '\0';
    s->p += n;
    return 0;
}

/* 'text' with '' for a quote, or a bare word. */
static int read_value(struct props *s, char *buf)
{
    skip_space(s);
    if (*s->p != '\'')
        return read_word(s, buf, "expected a value ('text' or a number)");
    const char *start = s->p++;
    size_t n = 0;
    for (;;) {
        if (*s->p == '\0') {
            s->p = start;
            return fail(s, "unterminated quote");
        }
        if (*s->p == '\'' && s->p[1] != '\'')
            break;
        if (*s->p == '\'')
            s->p++; /* '' is one quote */
        if (n == MAX_TOKEN - 1)
            return fail(s, "value too long");
        buf[n++] = *s->p++;
    }
    s->p++;
    buf[n] = '\0';
    return 0;
}

enum op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

static int read_op(struct props *s, enum op *op)
{
    static const struct {
        const char *text;
        enum op op;
    } ops[] = {{"!=", OP_NE}, {"<>", OP_NE}, {"<=", OP_LE}, {">=", OP_GE},
               {"==", OP_EQ}, {"=", OP_EQ},  {"<", OP_LT},  {">", OP_GT}};
    skip_space(s);
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        size_t n = strlen(ops[i].text);
        if (strncmp(s->p, ops[i].text, n) == 0) {
            s->p += n;
            *op = ops[i].op;
            return 0;
        }
    }
    return fail(s, "expected an operator (=, !=, <>, <, <=, >, >=)");
}

/* The node's value of `key`, or NULL when it has none. */
static const char *node_value(json_t *node, const char *key)
{
    const char *label = jstr(json_object_get(node, "labels"), key);
    if (label)
        return label;
    if (strcmp(key, "host") == 0 || strcmp(key, "network_address") == 0)
        return jstr(node, "hostname");
    return NULL;
}

static bool number(const char *text, double *out)
{
    char *end;
    *out = strtod(text, &end);
    return *text != '\0' && *end == '\0';
}

static bool compare(const char *have, enum op op, const char *want)
{
    if (op == OP_EQ || op == OP_NE)
        return (strcmp(have ? have : "", want) == 0) == (op == OP_EQ);
    if (have == NULL)
        return false;
    double x, y;
    double diff = number(have, &x) && number(want, &y) ? x - y : (double)strcmp(have, want);
    return op == OP_LT ? diff < 0 : op == OP_LE ? diff <= 0 : op == OP_GT ? diff > 0 : diff >= 0;
}

static int parse_or(struct props *s, bool *out);

static int parse_comparison(struct props *s, bool *out)
{
    char key[MAX_TOKEN], value[MAX_TOKEN];
    enum op op = OP_EQ;
    const char *at = s->p;
    if (keyword(s, "and") || keyword(s, "or") || keyword(s, "not")) {
        s->p = at;
        skip_space(s);
        return fail(s, "expected a property name");
    }
    if (read_word(s, key, "expected a property name") < 0 || read_op(s, &op) < 0 ||
        read_value(s, value) < 0)
        return -1;
    *out = s->node != NULL && compare(node_value(s->node, key), op, value);
    return 0;
}

static int parse_factor(struct props *s, bool *out)
{
    *out = false; /* also on an error */
    if (++s->depth > MAX_DEPTH)
        return fail(s, "nested too deep");
    int rc;
    skip_space(s);
    if (keyword(s, "not")) {
        rc = parse_factor(s, out);
        *out = !*out;
    } else if (*s->p == '(') {
        s->p++;
        rc = parse_or(s, out);
        skip_space(s);
        if (rc == 0 && *s->p != ')')
            rc = fail(s, "expected ')'");
        s->p += rc == 0;
    } else {
        rc = parse_comparison(s, out);
    }
    s->depth--;
    return rc;
}

static int parse_and(struct props *s, bool *out)
{
    if (parse_factor(s, out) < 0)
        return -1;
    while (keyword(s, "and")) {
        bool next = false;
        if (parse_factor(s, &next) < 0)
            return -1;
        *out = *out && next;
    }
    return 0;
}

static int parse_or(struct props *s, bool *out)
{
    if (parse_and(s, out) < 0)
        return -1;
    while (keyword(s, "or")) {
        bool next = false;
        if (parse_and(s, &next) < 0)
            return -1;
        *out = *out || next;
    }
    return 0;
}

static int evaluate(const char *expr, json_t *node, bool *out, struct serr *err)
{
    struct props s = {.text = expr ? expr : "", .p = expr ? expr : "", .node = node, .err = err};
    if (strlen(s.text) > JOB_PROPS_MAX)
        return serr_set(err, SERR_INVALID, "invalid property filter: longer than %d characters",
                        JOB_PROPS_MAX);
    skip_space(&s);
    if (*s.p == '\0')
        return serr_set(err, SERR_INVALID, "invalid property filter: empty");
    if (parse_or(&s, out) < 0)
        return -1;
    skip_space(&s);
    if (*s.p != '\0')
        return fail(&s, "expected AND, OR or the end");
    return 0;
}

int job_props_check(const char *expr, struct serr *err)
{
    bool ignored;
    return evaluate(expr, NULL, &ignored, err);
}

bool job_props_match(const char *expr, json_t *node)
{
    bool match = false;
    return evaluate(expr, node, &match, NULL) == 0 && match;
}
