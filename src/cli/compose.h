/* Compose files (version 3 and the Compose Specification) turned into the
 * JSON that `network create`, `secret create`, `config create` and `service
 * create` send (docs/api.md), for `shoal stack deploy`. No API calls: the
 * only I/O is reading the files a Compose file names (env_file). Unit-tested.
 *
 * A loaded file is a JSON tree of strings, objects and arrays (YAML scalars
 * stay strings; `${VAR}` interpolated; `<<` merge keys applied) where each
 * object also holds, under the key COMPOSE_POS, {"key": "FILE:LINE"} so that
 * errors name the file, line and key after files were merged. */
#ifndef SHOAL_CLI_COMPOSE_H
#define SHOAL_CLI_COMPOSE_H

#include <jansson.h>
#include <stddef.h>

#include "base/err.h"

#define COMPOSE_POS "\x01pos"

/* Parses one file's text (`name` for messages) into *doc (caller frees).
 * Variables come from getenv(). Errors: "FILE:LINE: why". */
int compose_parse(const char *text, size_t len, const char *name, json_t **doc, struct serr *err);
/* Merges `over` into `base` as `-c base -c over`: mappings key by key, other
 * values replaced (environment and labels lists merged by variable name). */
void compose_merge(json_t *base, json_t *over);
/* The stack's objects (caller frees *plan):
 * {"networks":[{"name","subnet"?}], "secrets":[{"name","file"|"data"}],
 *  "configs":[...], "volumes":[{"name","labels","backup"?}] (those with labels),
 *  "services":[service spec], "warnings":["FILE:LINE: ..."]}
 * Only what the stack creates is listed (no external objects); names are
 * prefixed "STACK_". Relative paths are taken from `workdir`. Every key is
 * checked: an unknown or unsupported one fails with "FILE:LINE: KEY.PATH: why"
 * (keys Docker ignores in swarm mode, such as build, give a warning). */
int compose_convert(json_t *doc, const char *stack, const char *workdir, json_t **plan,
                    struct serr *err);
/* Reads, parses and merges `files` in order, then converts (workdir: the
 * first file's directory). */
int compose_load_files(const char *const *files, int nfiles, const char *stack, json_t **plan,
                       struct serr *err);
/* Whether `name` is a valid stack name (letters, digits, '-', '.', '_'
 * after a letter or digit; at most 40). */
int compose_check_stack_name(const char *name, struct serr *err);

/* Deploying again: the service update patch (caller frees *patch) from a
 * running service's spec to the stack's. Returns 0 (an empty patch: no
 * change), or 1 with *replace_why the field a patch cannot change (mounts,
 * network...): the service must be replaced. */
int stack_service_patch(json_t *old_spec, json_t *new_spec, json_t **patch,
                        const char **replace_why);

#define COMPOSE_NAMESPACE_LABEL "com.docker.stack.namespace"
/* A top-level volume's labels that give it a backup policy (`volume create
 * --backup SCHEDULE --keep N --hook CMD`): shoal.backup: daily|hourly|6h... */
#define COMPOSE_BACKUP_LABEL "shoal.backup"
#define COMPOSE_BACKUP_KEEP_LABEL "shoal.backup.keep"
#define COMPOSE_BACKUP_HOOK_LABEL "shoal.backup.hook"

#endif
