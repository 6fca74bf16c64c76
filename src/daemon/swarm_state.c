/* The swarm files of a node: <state_dir>/swarm.json, tls/ (this node's
 * certificate) and, on managers, ca/ (the cluster CA, written from the store). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "daemon/swarm_int.h"
#include "store/store.h"

int swarm_state_write_text(struct shoal *sh, const char *rel, const char *text, struct serr *err)
{
    char *path = shoal_state_path(sh, rel);
    int rc = write_file_atomic(path, text, strlen(text), true, err);
    free(path);
    return rc;
}

char *swarm_state_read_text(struct shoal *sh, const char *rel, struct serr *err)
{
    char *path = shoal_state_path(sh, rel), *text = NULL;
    int rc = read_file(path, &text, NULL, err);
    free(path);
    return rc == 0 ? text : NULL;
}

int swarm_state_save(struct shoal *sh, const char *cluster_id, json_t *managers,
                     const char *join_addr, struct serr *err)
{
    char raft_id[17];
    snprintf(raft_id, sizeof(raft_id), "%016llx", (unsigned long long)sh->raft_id);
    json_t *cfg = json_pack("{s:s, s:s, s:s, s:s, s:O, s:s?, s:s?}", "addr", sh->swarm_addr,
                            "raft_id", raft_id, "cluster_id", cluster_id, "role", sh->role,
                            "managers", managers, "listen_addr", sh->listen_addr, "join_addr",
                            join_addr);
    char *text = json_dumps(cfg, JSON_INDENT(2));
    int rc = swarm_state_write_text(sh, "swarm.json", text, err);
    free(text);
    json_decref(cfg);
    return rc;
}

void swarm_state_forget(struct shoal *sh)
{
    static const char *const paths[] = {"swarm.json", "raft", "tls", "ca", NULL};
    for (int i = 0; paths[i]; i++) {
        char *path = shoal_state_path(sh, paths[i]);
        rm_rf(path, NULL);
        free(path);
    }
}

int swarm_state_save_tls(struct shoal *sh, const char *ca, const char *cert, const char *key,
                         struct serr *err)
{
    char *dir = shoal_state_path(sh, "tls");
    int rc = mkdir_p(dir, 0700, err);
    free(dir);
    if (rc == 0)
        rc = swarm_state_write_text(sh, "tls/ca.crt", ca, err);
    if (rc == 0)
        rc = swarm_state_write_text(sh, "tls/node.crt", cert, err);
    if (rc == 0)
        rc = swarm_state_write_text(sh, "tls/node.key", key, err);
    return rc;
}

/* The CA (key, certificate, join secrets) is cluster state, in the store's
 * meta "ca", so any manager that becomes leader can sign. The library works
 * on files: this writes them under <state_dir>/ca/ from the store. */
char *swarm_ca_dir(struct shoal *sh, struct serr *err)
{
    json_t *ca = store_get(sh->store, "meta", "ca");
    if (ca == NULL) {
        serr_set(err, SERR_UNAVAILABLE, "the cluster has no CA yet");
        return NULL;
    }
    char *dir = shoal_state_path(sh, "ca");
    static const char *const files[][2] = {{"ca/ca.crt", "cert"}, {"ca/ca.key", "key"},
                                           {"ca/tokens.json", "tokens"}};
    int rc = mkdir_p(dir, 0700, err);
    for (size_t i = 0; rc == 0 && i < 3; i++) {
        const char *want = json_string_value(json_object_get(ca, files[i][1]));
        char *have = swarm_state_read_text(sh, files[i][0], NULL);
        if (want && (have == NULL || strcmp(have, want) != 0))
            rc = swarm_state_write_text(sh, files[i][0], want, err);
        free(have);
    }
    json_decref(ca);
    if (rc < 0) {
        free(dir);
        return NULL;
    }
    return dir;
}

json_t *swarm_state_ca_meta(struct shoal *sh, struct serr *err)
{
    char *cert = swarm_state_read_text(sh, "ca/ca.crt", err);
    char *key = cert ? swarm_state_read_text(sh, "ca/ca.key", err) : NULL;
    char *tokens = key ? swarm_state_read_text(sh, "ca/tokens.json", err) : NULL;
    json_t *meta = tokens ? json_pack("{s:s, s:s, s:s, s:s}", "id", "ca", "cert", cert, "key", key,
                                      "tokens", tokens)
                          : NULL;
    free(cert);
    free(key);
    free(tokens);
    return meta;
}
