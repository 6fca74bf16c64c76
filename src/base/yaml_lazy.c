/* libyaml, loaded when first called: the functions of its API that shoal uses
 * (compose files, src/cli/compose_yaml.c), defined here and forwarded to
 * libyaml-0.so.2, which the binary does not link. Only `stack deploy` reads
 * YAML: the daemon and every other command no longer map it (~90 kB of the
 * daemon's RSS, docs/benchmarks.md, Footprint). Without libyaml installed,
 * parsing fails with the reason as the parser's problem. */
#include <string.h>
#include <yaml.h>

#include "base/lazy_lib.h"

static struct lazy_lib libyaml = LAZY_LIB("libyaml-0.so.2");

#define YAML_FN(name) LAZY_FN(&libyaml, name)

int yaml_parser_initialize(yaml_parser_t *parser)
{
    YAML_FN(yaml_parser_initialize);
    if (fn)
        return fn(parser);
    memset(parser, 0, sizeof(*parser));
    parser->error = YAML_MEMORY_ERROR;
    return 0;
}

void yaml_parser_delete(yaml_parser_t *parser)
{
    YAML_FN(yaml_parser_delete);
    if (fn)
        fn(parser);
}

void yaml_parser_set_input_string(yaml_parser_t *parser, const unsigned char *input, size_t size)
{
    YAML_FN(yaml_parser_set_input_string);
    if (fn)
        fn(parser, input, size);
}

int yaml_parser_load(yaml_parser_t *parser, yaml_document_t *document)
{
    YAML_FN(yaml_parser_load);
    if (fn)
        return fn(parser, document);
    parser->problem = "cannot load libyaml-0.so.2";
    return 0;
}

void yaml_document_delete(yaml_document_t *document)
{
    YAML_FN(yaml_document_delete);
    if (fn)
        fn(document);
}

yaml_node_t *yaml_document_get_node(yaml_document_t *document, int index)
{
    YAML_FN(yaml_document_get_node);
    return fn ? fn(document, index) : NULL;
}

yaml_node_t *yaml_document_get_root_node(yaml_document_t *document)
{
    YAML_FN(yaml_document_get_root_node);
    return fn ? fn(document) : NULL;
}
