/* Image store: layers stored by digest, unpacked once, read with libarchive.
 *
 * Layout under the store's directory:
 *   layers/<hex of diff_id>/root/   the unpacked layer, whiteouts converted to
 *                                   overlayfs form (char device 0:0, and the
 *                                   trusted.overlay.opaque=y xattr on opaque dirs)
 *   layers/<hex>/size               bytes of the uncompressed layer tar
 *   layers/<hex>/layer.blob         the layer file as it came (maybe compressed),
 *                                   served to nodes that fetch the layer, pushed
 *                                   to registries
 *   configs/<hex of the config>     the image's config blob as it came (pull,
 *                                   load, import), for push and history; small,
 *                                   kept when the image goes
 *   tmp/                            work area; a layer is unpacked in tmp/ and
 *                                   renamed into layers/ when complete
 *
 * The store keeps no list of images: image descriptions (JSON, below) are
 * cluster state and live in the Raft store. These functions block (disk I/O):
 * the daemon calls them from libuv's thread pool. They are safe to call from
 * several threads at once for different archives.
 *
 * Image description (jansson object, owned by the caller):
 *   {"id": "sha256:<hex of the config blob>",
 *    "tags": ["busybox:latest"],              // normalised NAME:TAG
 *    "layers": ["sha256:<diff_id>", ...],     // bottom first
 *    "size": <sum of layer sizes>,
 *    "config": {"Env": [...], "Cmd": [...], "Entrypoint": [...],
 *               "WorkingDir": "", "User": ""}} // absent keys omitted
 */
#ifndef SHOAL_AGENT_IMAGE_H
#define SHOAL_AGENT_IMAGE_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"
#include "model/imageref.h" /* image references, for this header's callers */

struct image_store;

/* Opens (creating) the store under `dir`. Caller frees with image_store_close(). */
int image_store_open(const char *dir, struct image_store **out, struct serr *err);
void image_store_close(struct image_store *s);

/* From now on, each layer of `s` is unpacked by a short-lived process of
 * binary `exe` (copied; shoal: `exe IMAGE_UNPACK_COMMAND FILE DIR`, image_unpack_main):
 * libarchive and the libraries it loads (libxml2, ICU and libstdc++, which
 * stays once loaded) are then never mapped in the daemon. */
void image_store_unpack_apart(struct image_store *s, const char *exe);
#define IMAGE_UNPACK_COMMAND "_unpack-layer"
/* That process: argv is {"shoal", IMAGE_UNPACK_COMMAND, FILE, DIR}; prints
 * "HEX SIZE" (exit 0) or "KIND MESSAGE" (exit 1, KIND an enum serr_kind). */
int image_unpack_main(int argc, char **argv);

/* A pulled image: the description of the image whose config blob is
 * config[len] (id: its sha256), once every layer its rootfs.diff_ids names
 * is in the store (sizes read from the store). *image gets a new reference,
 * tagged `tags` (array, copied; NULL: none). */
int image_describe_config(struct image_store *s, const char *config, size_t len, json_t *tags,
                          json_t **image, struct serr *err);

/* `shoal image import`: a root filesystem tarball (any compression libarchive
 * reads) becomes a one-layer image tagged `ref`. *image gets a new reference. */
int image_import(struct image_store *s, const char *tar_path, const char *ref, json_t **image,
                 struct serr *err);

/* `shoal image load`: a `docker save` archive (manifest.json) or an OCI image
 * layout tarball (oci-layout + index.json; gzip or plain layers). *images gets
 * a new JSON array of descriptions, one per image in the archive, with the
 * tags the archive names (OCI: annotation org.opencontainers.image.ref.name). */
int image_load(struct image_store *s, const char *archive_path, json_t **images,
               struct serr *err);

/* Path of an unpacked layer's root ("sha256:..."), newly allocated, or NULL
 * when the layer is not in the store. */
char *image_layer_dir(struct image_store *s, const char *diff_id);

/* The layer as it arrived (maybe compressed), for other nodes to fetch:
 * newly allocated path, or NULL. Layers stored before this existed have none. */
char *image_layer_blob(struct image_store *s, const char *diff_id);

/* The config blob of image `id` ("sha256:<hex>"): *data (newly allocated,
 * caller frees) and *len. SERR_NOT_FOUND when this store never kept it
 * (images stored before configs were kept, or stored on another node). */
int image_config_blob(struct image_store *s, const char *id, char **data, size_t *len,
                      struct serr *err);

/* `image history`: *rows gets a new array, newest first, one object per
 * entry of the config's "history" ({"created": RFC 3339 or "", "created_by",
 * "size": bytes of the layer it added (0: none, or not on this node),
 * "comment", "empty_layer": bool}); a config without history (an import)
 * gives one row per layer. SERR_NOT_FOUND as image_config_blob. */
int image_history(struct image_store *s, const char *id, json_t **rows, struct serr *err);

/* Adds a layer fetched from another node: unpacks `path` unless the layer is
 * already stored, and fails (storing nothing) unless its content hashes to
 * `diff_id`. */
int image_add_layer(struct image_store *s, const char *path, const char *diff_id,
                    struct serr *err);

/* True when every layer of the description is in the store. */
bool image_has_layers(struct image_store *s, json_t *image);

/* Garbage collection. A layer is removed when it is neither in `keep` nor
 * under a mounted overlay (a container's rootfs, /proc/self/mountinfo).
 * Callers make sure nothing adds or claims layers meanwhile (daemon/layers.h:
 * no upload or fetch in flight).
 *
 * image_gc_detach: moves each such layer out of layers/ into a fresh
 * directory under tmp/ (renames only: quick, fine on the loop thread);
 * `keep` is a set, a JSON object whose keys are "sha256:<diff_id>". *trash
 * gets that directory (newly allocated) or NULL when nothing was moved.
 * image_gc_purge: deletes it and frees the path (slow: the thread pool);
 * NULL is fine. What a crash leaves in tmp/ goes at the next open.
 * image_gc: both at once, keeping the layers of `keep` (array of image
 * descriptions). image_keep_layers adds an image's layers to a set. */
int image_gc_detach(struct image_store *s, json_t *keep, char **trash, struct serr *err);
void image_gc_purge(char *trash);
int image_gc(struct image_store *s, json_t *keep, struct serr *err);
void image_keep_layers(json_t *keep, json_t *image);

#endif
