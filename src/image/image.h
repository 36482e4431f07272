/*
 * image.h - the public API of berth's image layer: references, the content
 * store, image metadata, registry pull/push, save/load, import/export and the
 * overlay snapshots containers run on.
 *
 * Everything lives under one root directory (the daemon's --root):
 *
 *     <root>/content/blobs/sha256/<hex>   blobs (manifests, configs, compressed layers),
 *                                         written to a temp file, digest-verified,
 *                                         fsynced and renamed into place
 *     <root>/content/ingest/              temp files of downloads in progress
 *     <root>/snapshots/<id>/fs            a layer's unpacked tree (id = chain ID hex) or a
 *                                         container's upper dir (id = container id)
 *     <root>/snapshots/<id>/work          overlay work dir (containers only)
 *     <root>/snapshots/<id>/rootfs        mount point of a container's merged rootfs
 *     <root>/image.db                     SQLite (WAL): images, tags, layers, snapshots
 *
 * Concurrency: one `struct image_store` may be used from several threads at
 * once (each call takes its own SQLite connection from the store), and two
 * processes may open the same root: every metadata change is one SQLite
 * transaction, blobs and snapshots are published by rename, so a reader never
 * sees a half-written object.
 *
 * Conventions (see common/error.h): functions return 0 (or a count) on success
 * and -errno on failure with *err set; `err` may be NULL. Output parameters
 * (`ret_*`) are untouched on failure and always set on success; what they
 * point to is owned by the caller unless stated otherwise. Strings passed in
 * are borrowed for the duration of the call only. JSON results are jansson
 * objects with one reference owned by the caller (json_decref them).
 *
 * Image names: wherever a function takes `name`, it accepts what docker
 * accepts: a reference ("busybox", "busybox:1.36", "reg:5000/a/b@sha256:..."),
 * a full image ID ("sha256:<64 hex>"), a bare 64-hex ID, or an unambiguous ID
 * prefix of at least 1 hex digit that does not parse as a tagged name in
 * the store. -ENOENT means "no such image"; the message reads
 * "no such image: 'name'".
 *
 * Image IDs are config digests ("sha256:<hex>"), exactly as docker computes
 * them, so `docker save` -> image_load() keeps the ID.
 */
#ifndef BERTH_IMAGE_IMAGE_H
#define BERTH_IMAGE_IMAGE_H

#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/error.h"

/* ------------------------------------------------------------------------ */
/* References (docker's distribution/reference, normalised)                 */
/* ------------------------------------------------------------------------ */

/* Limits from distribution/reference. */
#define IMAGE_REF_NAME_MAX 255 /* whole name (domain + path) */
#define IMAGE_REF_TAG_MAX  128

/*
 * A parsed, normalised reference. "busybox" becomes domain "docker.io",
 * path "library/busybox". All strings are owned by the struct; tag and
 * digest may be NULL (image_ref_parse() with IMAGE_REF_DEFAULT_TAG fills tag
 * "latest" when both are absent).
 */
struct image_ref {
	char *domain; /* "docker.io", "localhost:5000", "[::1]:5000" */
	char *path;   /* "library/busybox" */
	char *tag;    /* "latest", or NULL */
	char *digest; /* "sha256:<hex>", or NULL */
};

enum image_ref_flags {
	IMAGE_REF_DEFAULT = 0,
	IMAGE_REF_DEFAULT_TAG = 1 << 0, /* add ":latest" when there is neither tag nor digest */
	IMAGE_REF_NO_DIGEST = 1 << 1,   /* refuse "@digest" (targets of tag/push) */
};

/*
 * Parse and normalise `s` like docker's ParseNormalizedNamed(): lowercase
 * repository components, optional "host[:port]/" (a first component with a
 * '.', a ':' or equal to "localhost" is a host), ":tag", "@digest". A full
 * 64-hex string alone is refused (it is an image ID, not a name). Errors
 * (-EINVAL) read like docker's: "invalid reference format",
 * "invalid reference format: repository name must be lowercase",
 * "repository name must not be more than 255 characters",
 * "invalid reference format: tag ..." etc., with the input quoted.
 * On success *ret is a new struct (free with image_ref_free()).
 */
int image_ref_parse(const char *s, int flags, struct image_ref **ret, struct berth_error **err);

/* "docker.io/library/busybox:latest@sha256:..." (only the parts present). Caller frees. */
char *image_ref_string(const struct image_ref *r);
/* "docker.io/library/busybox" (no tag or digest). Caller frees. */
char *image_ref_name(const struct image_ref *r);
/* Docker's familiar form: "busybox:latest", "myreg:5000/x:1". Caller frees. */
char *image_ref_familiar(const struct image_ref *r);
/* Deep copy; aborts on OOM. */
struct image_ref *image_ref_dup(const struct image_ref *r);
/* Accepts NULL; returns NULL. */
struct image_ref *image_ref_free(struct image_ref *r);
static inline void image_ref_freep(struct image_ref **r)
{
	*r = image_ref_free(*r);
}
#define _cleanup_image_ref_ _cleanup_(image_ref_freep)

/* ------------------------------------------------------------------------ */
/* Platforms                                                                */
/* ------------------------------------------------------------------------ */

/* Parse "os[/arch[/variant]]" ("linux/arm64/v8"); NULL or "" means linux/amd64. */
struct image_platform {
	char *os, *arch, *variant; /* variant may be NULL; owned by the struct */
};
int image_platform_parse(const char *s, struct image_platform *ret, struct berth_error **err);
void image_platform_done(struct image_platform *p);

/* ------------------------------------------------------------------------ */
/* The store                                                                */
/* ------------------------------------------------------------------------ */

struct image_store;

/*
 * Open (creating when missing) the store under `root` (made 0700 if new).
 * Runs SQLite migrations. Returns a new handle (free with image_store_free()).
 * Safe to open the same root from several processes.
 */
int image_store_open(const char *root, struct image_store **ret, struct berth_error **err);
/* Accepts NULL; returns NULL. Does not unmount anything. */
struct image_store *image_store_free(struct image_store *s);
/* The root given at open time (owned by the store). */
const char *image_store_root(const struct image_store *s);

/*
 * Resolve `name` (see "Image names" above) to a full image ID
 * ("sha256:<hex>", caller frees). -ENOENT if nothing matches, -EINVAL if
 * `name` is neither a valid reference nor an ID, -ENOTUNIQ when an ID prefix
 * matches several images.
 */
int image_resolve(struct image_store *s, const char *name, char **ret_id, struct berth_error **err);

/*
 * The image's OCI/docker config JSON (the whole config blob: architecture,
 * os, config{Env,Cmd,Entrypoint,WorkingDir,User,ExposedPorts,Volumes,Labels,
 * StopSignal,Healthcheck}, rootfs, history). The engine derives container
 * defaults from config["config"].
 */
int image_get_config(struct image_store *s, const char *name, json_t **ret, struct berth_error **err);

/*
 * Docker's `GET /images/{name}/json` body: Id, RepoTags, RepoDigests, Parent,
 * Comment, Created, Container, ContainerConfig, DockerVersion, Author, Config,
 * Architecture, Variant, Os, Size, VirtualSize, GraphDriver, RootFS, Metadata.
 */
int image_inspect(struct image_store *s, const char *name, json_t **ret, struct berth_error **err);

/* Docker's `GET /images/{name}/history` body: [{Id, Created, CreatedBy, Tags, Size, Comment}]. */
int image_history(struct image_store *s, const char *name, json_t **ret, struct berth_error **err);

/*
 * Filters of `docker images` / `GET /images/json`. Every member is optional
 * (NULL / false). Vectors are NULL-terminated and borrowed.
 *   reference: glob patterns on familiar names ("busy*", "reg:5000/x:*");
 *              a pattern without ':' matches any tag; any one must match
 *   dangling:  when dangling_set, keep only images with (true) / without
 *              (false) tags
 *   label:     "key" or "key=value"; all must match
 *   before/since: image names; keep images created strictly before / after
 */
struct image_list_filters {
	const char *const *reference;
	bool dangling_set, dangling;
	const char *const *label;
	const char *before, *since;
	bool all; /* docker's ?all=1: also the builder's intermediate images (below) */
};

/*
 * History comment of the builder's intermediate images (one per build step,
 * the build cache's states). Like docker's intermediate (parent-chained)
 * images, an untagged image whose last history entry carries it is listed
 * only with filters->all.
 */
#define IMAGE_COMMENT_BUILD_STEP "berth build step"

/*
 * Docker's `GET /images/json` body: array of {Id, ParentId, RepoTags,
 * RepoDigests, Created (unix seconds), Size, SharedSize (-1), VirtualSize,
 * Labels, Containers (-1)}, newest first. filters may be NULL.
 * -EINVAL for a bad filter value (e.g. before= an unknown image -> -ENOENT).
 */
int image_list(struct image_store *s, const struct image_list_filters *filters, json_t **ret,
	       struct berth_error **err);

/*
 * `docker system df`: set "SharedSize" of every summary in images (an
 * image_list() result) to the bytes of its layers that another image in the
 * store also uses, and *ret_layers_size to the size of all distinct layers of
 * all images (a layer shared by n images counts once, as in dockerd).
 */
int image_disk_usage(struct image_store *s, json_t *images, int64_t *ret_layers_size,
		     struct berth_error **err);

/*
 * Point `target` (a reference; tag defaults to latest; no digest) at the
 * image `source` (any name). Replaces an existing tag of that name.
 */
int image_tag(struct image_store *s, const char *source, const char *target, struct berth_error **err);

/*
 * Callback asked before an image is deleted (not before a mere untag): return
 * true when a container uses image `image_id`, and optionally set
 * *ret_container (malloc'd, freed by the library) to its id for the message
 * "conflict: unable to delete <id> (must be forced) - image is being used by
 * stopped container <cid>" (-EBUSY). May be NULL (nothing is in use).
 */
typedef bool (*image_in_use_fn)(const char *image_id, char **ret_container, void *userdata);

enum image_remove_flags {
	IMAGE_REMOVE_DEFAULT = 0,
	IMAGE_REMOVE_FORCE = 1 << 0,    /* delete even with several tags / in use (docker -f) */
	IMAGE_REMOVE_NO_PRUNE = 1 << 1, /* reserved for docker compat: we have no parent chains */
};

/*
 * `docker rmi`: when `name` is a tag and the image has other tags, only the
 * tag is removed. Otherwise the image is deleted: its tags, digests, the
 * manifest/config blobs, and every layer blob and layer snapshot no other
 * image references (reference counted in the database). Deleting by ID an
 * image with several tags needs IMAGE_REMOVE_FORCE (-EBUSY otherwise, message
 * like docker's). An image in use (in_use says so) is refused with -EBUSY
 * unless forced, in which case only its tags are removed (docker behaviour).
 * *ret (may be NULL) receives docker's response: [{"Untagged": ...}, {"Deleted": ...}].
 */
int image_remove(struct image_store *s, const char *name, int flags, image_in_use_fn in_use, void *userdata,
		 json_t **ret, struct berth_error **err);

/*
 * `docker image prune`: delete dangling images (all unused images when
 * `all`), skipping those in use, created after `until_unix` (0 = no limit)
 * and, when labels is non-NULL, those not matching every "k" / "k=v" label.
 * Then remove unreferenced blobs and snapshots. *ret (may be NULL):
 * {"ImagesDeleted": [...], "SpaceReclaimed": bytes}.
 */
int image_prune(struct image_store *s, bool all, int64_t until_unix, const char *const *labels,
		image_in_use_fn in_use, void *userdata, json_t **ret, struct berth_error **err);

/* ------------------------------------------------------------------------ */
/* Progress                                                                 */
/* ------------------------------------------------------------------------ */

/*
 * One progress event, shaped like the docker API's JSON progress stream:
 *   {"status": "Downloading", "id": "<12 hex>", "progressDetail": {"current": n, "total": m}}
 * id: short layer id (first 12 hex digits of the layer digest), or NULL for
 *     image-wide lines ("Pulling from library/busybox", "Digest: sha256:...",
 *     "Status: Downloaded newer image for busybox:latest").
 * status: "Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum",
 *     "Download complete", "Extracting", "Pull complete", "Already exists";
 *     push: "Preparing", "Waiting", "Pushing", "Pushed", "Layer already exists",
 *     "Mounted from <repo>"; load: "Loading layer".
 * current/total: bytes; total 0 when unknown. All pointers are valid only
 * during the callback. Callbacks come from the thread that called the
 * operation, never concurrently.
 */
struct image_progress {
	const char *id;
	const char *status;
	uint64_t current, total;
};
typedef void (*image_progress_fn)(const struct image_progress *p, void *userdata);

/* ------------------------------------------------------------------------ */
/* Registry client                                                          */
/* ------------------------------------------------------------------------ */

/*
 * Explicit credentials (docker's X-Registry-Auth). When NULL or all members
 * are NULL, credentials come from $DOCKER_CONFIG/config.json or
 * ~/.docker/config.json "auths" (base64 "auth" or username/password,
 * identitytoken) for the registry host. Credential helpers (credsStore) are
 * not run.
 */
struct image_auth {
	const char *username, *password;
	const char *identity_token; /* OAuth2 refresh token (docker's identitytoken), exchanged at the token
				       endpoint */
	const char *registry_token; /* bearer token used as is */
};

struct image_remote_opts {
	const struct image_auth *auth; /* may be NULL */
	/* Hosts ("host:port") allowed over plain HTTP besides loopback ones. */
	const char *const *insecure_registries;
	/* Directory holding <host[:port]>/ca.crt (used instead of the system CAs for that host) and
	 * client.cert/client.key; NULL = /etc/docker/certs.d. */
	const char *certs_dir;
	unsigned max_concurrent;    /* parallel blob transfers; 0 = 3 (docker's default) */
	image_progress_fn progress; /* may be NULL */
	void *progress_data;
};

/*
 * Pull `ref` (a reference string) for `platform` (NULL = linux/amd64):
 * resolve the manifest (OCI or docker schema 2, image or index/list; schema 1
 * is refused: "unsupported manifest media type ... schema 1 images are no
 * longer supported"), fetch the config and the missing layers in parallel
 * (resuming with Range after a dropped connection), verify every digest and
 * the diff_ids while unpacking (on an internal worker thread, overlapping
 * the downloads), then tag. Blobs already present are not fetched
 * ("Already exists"). *ret_id (may be NULL): image ID, caller frees.
 * Nothing is tagged unless the whole image is stored and verified.
 */
int image_pull(struct image_store *s, const char *ref, const char *platform,
	       const struct image_remote_opts *opts, char **ret_id, struct berth_error **err);

/*
 * Push the image tagged `ref` (a reference with a tag; it must exist in the
 * store, like docker's `push` of a tag) to that reference's registry and
 * repository. Blobs are checked with HEAD, mounted cross-repository when the
 * store knows another repository on the same registry holds them (a refused
 * mount falls back to an upload), otherwise uploaded (monolithic PUT up to
 * 16 MiB, chunked PATCH above); then the manifest is PUT and its digest
 * recorded as a RepoDigest. *ret_digest (may be NULL): the manifest digest,
 * caller frees.
 */
int image_push(struct image_store *s, const char *ref, const struct image_remote_opts *opts,
	       char **ret_digest, struct berth_error **err);

/*
 * `docker login` on the daemon side: check the credentials against
 * `registry` ("localhost:5000"; NULL or "docker.io" for the Hub) by getting
 * /v2/ with them (through a Bearer token server when the registry asks).
 * 0 when accepted; -EACCES "unauthorized" otherwise. Stores nothing.
 */
int image_login(struct image_store *s, const char *registry, const struct image_auth *auth,
		const struct image_remote_opts *opts, struct berth_error **err);

/*
 * Store / erase credentials for `registry` in $DOCKER_CONFIG/config.json (or
 * ~/.docker/config.json) "auths", the file image_pull()/image_push() read and
 * docker's CLI writes: the file is rewritten atomically, mode 0600, keeping
 * its other keys. Hub credentials use docker's key
 * "https://index.docker.io/v1/". Erasing an absent entry: -ENOENT.
 */
int image_credentials_store(const char *registry, const char *username, const char *password,
			    struct berth_error **err);
int image_credentials_erase(const char *registry, struct berth_error **err);

/* ------------------------------------------------------------------------ */
/* Archives: save/load, import                                              */
/* ------------------------------------------------------------------------ */

enum image_archive_format {
	IMAGE_ARCHIVE_DOCKER = 0, /* `docker save` classic layout: manifest.json, repositories, <config>.json,
				     <layer>/layer.tar (uncompressed), readable by every docker load */
	IMAGE_ARCHIVE_OCI,        /* OCI image layout tarball (index.json, oci-layout, blobs/sha256/) */
};

/*
 * Write the images `names` (NULL-terminated, at least one; references keep
 * their tags in the archive, IDs export untagged) as one tar stream to
 * out_fd. out_fd is not closed.
 */
int image_save(struct image_store *s, const char *const *names, enum image_archive_format format, int out_fd,
	       struct berth_error **err);

/*
 * Read a `docker save` or OCI layout tarball (uncompressed, gzip or zstd;
 * the format is detected) from in_fd, store blobs, unpack and verify layers,
 * then apply tags found in the archive (manifest.json RepoTags, or OCI
 * "org.opencontainers.image.ref.name" / "io.containerd.image.name"
 * annotations). `tag` (may be NULL) tags the first image loaded (for untagged
 * OCI archives). Progress events have status "Loading layer".
 * *ret_loaded (may be NULL): NULL-terminated vector of docker's lines,
 * "Loaded image: busybox:latest" or "Loaded image ID: sha256:...";
 * free with strv_free(). Hostile archives (traversal, bad digests,
 * oversized JSON) fail with -EINVAL / -EBADMSG; the failing image is not
 * tagged (images listed before it in the same archive stay loaded).
 */
int image_load(struct image_store *s, int in_fd, const char *tag, image_progress_fn progress,
	       void *progress_data, char ***ret_loaded, struct berth_error **err);

/*
 * `docker import`: make a one-layer image from a rootfs tarball on in_fd
 * (plain, gzip or zstd). `config_json` (may be NULL) is an image config
 * "config" object (Cmd, Env, ...) to apply; `message` the history comment.
 * Tags `ref` when non-NULL. *ret_id (may be NULL): image ID, caller frees.
 */
int image_import(struct image_store *s, int in_fd, const char *ref, const json_t *config_json,
		 const char *message, char **ret_id, struct berth_error **err);

/* ------------------------------------------------------------------------ */
/* Snapshots: container root filesystems                                    */
/* ------------------------------------------------------------------------ */

/*
 * A container's writable snapshot. Choice: the LIBRARY mounts the overlay
 * (the runtime only gets a ready root path for the OCI spec's root.path).
 * Mounting uses the new mount API (fsopen/fsconfig "lowerdir+" one layer at a
 * time), so the number of layers is not limited by the one-page mount option
 * string; on kernels without "lowerdir+" (< 6.8) it falls back to mount(2)
 * with the joined option string (-E2BIG when it exceeds a page). Lower dirs
 * are listed for information
 * (e.g. GraphDriver.Data in inspect), topmost first.
 * All members owned by the struct; free with image_snapshot_free().
 */
struct image_snapshot {
	char *id;         /* the container id given to prepare */
	char *image_id;   /* "sha256:..." the snapshot was made from (NULL for an empty one) */
	char *rootfs;     /* <root>/snapshots/<id>/rootfs: the mounted merged tree */
	char *upperdir;   /* <root>/snapshots/<id>/fs */
	char *workdir;    /* <root>/snapshots/<id>/work */
	char **lowerdirs; /* NULL-terminated, topmost first; empty for a scratch image */
};

struct image_snapshot *image_snapshot_free(struct image_snapshot *sn);
static inline void image_snapshot_freep(struct image_snapshot **sn)
{
	*sn = image_snapshot_free(*sn);
}
#define _cleanup_image_snapshot_ _cleanup_(image_snapshot_freep)

/*
 * Create the writable snapshot `id` (the container id: [A-Za-z0-9_.-]{1,128})
 * on top of image `image` (any name; NULL = empty scratch rootfs), and mount
 * it at sn->rootfs. -EEXIST when a snapshot with that id exists. The snapshot
 * holds a reference on the image's layers (image_remove() refuses to free
 * them). The mount lives in the caller's mount namespace.
 */
int image_snapshot_prepare(struct image_store *s, const char *id, const char *image,
			   struct image_snapshot **ret, struct berth_error **err);

/* Describe an existing snapshot and (re)mount it if it is not mounted (after a reboot). */
int image_snapshot_mount(struct image_store *s, const char *id, struct image_snapshot **ret,
			 struct berth_error **err);

/* Describe an existing snapshot (paths, lower dirs) without mounting it. -ENOENT if unknown. */
int image_snapshot_describe(struct image_store *s, const char *id, struct image_snapshot **ret,
			    struct berth_error **err);

/* Unmount (lazily if busy) without removing. Not mounted / unknown id: 0 / -ENOENT. */
int image_snapshot_unmount(struct image_store *s, const char *id, struct berth_error **err);

/*
 * Unmount and delete the snapshot's directory (upper dir included), then its
 * record; the files go first, so a full disk gets its space back before the
 * record's deletion needs some. A record whose directory is already gone is
 * removed too. Unknown id (neither): -ENOENT.
 */
int image_snapshot_remove(struct image_store *s, const char *id, struct berth_error **err);

/* Ids of every recorded snapshot (NULL-terminated, free with strv_free). */
int image_snapshot_list(struct image_store *s, char ***ret, struct berth_error **err);

/*
 * Options of image_commit(). All optional.
 *   ref:         tag the new image (reference string)
 *   config:      replaces the parent's config["config"] object (Cmd, Env, ...)
 *   author, comment, created_by: history entry fields
 *   empty_layer: record only a history entry (no new layer), for builder
 *                steps like ENV; the upper dir is ignored
 */
struct image_commit_opts {
	const char *ref;
	const json_t *config;
	const char *author, *comment, *created_by;
	bool empty_layer;
	/* upper-dir paths ("etc/hosts", no leading '/') left out of the layer (container mount points) */
	const char *const *exclude;
};

/*
 * `docker commit`: turn the upper dir of snapshot `id` into a new layer on top
 * of the snapshot's image: overlay whiteouts (0/0 char devices) become
 * ".wh.<name>" entries, opaque dirs (trusted.overlay.opaque=y) get
 * ".wh..wh..opq"; ownership, modes, mtimes, xattrs, hardlinks kept. The new
 * image's config has the added diff_id and history entry. The snapshot is
 * left as it is (the container can keep running). *ret_id (may be NULL):
 * new image ID, caller frees.
 */
int image_commit(struct image_store *s, const char *id, const struct image_commit_opts *opts, char **ret_id,
		 struct berth_error **err);

/*
 * A new image whose config is `config` (a whole image config: architecture,
 * os, config, history, ...; "rootfs" is replaced, "created" set to now when
 * absent) and whose layers are those of `layers_image` (any name; NULL: no
 * layers). Tags `ref` when non-NULL. The builder's final commit. *ret_id
 * (may be NULL): image ID, caller frees.
 */
int image_compose(struct image_store *s, const char *layers_image, const json_t *config, const char *ref,
		  char **ret_id, struct berth_error **err);
/*
 * image_compose() on the first n_layers layers of layers_image only (SIZE_MAX: all; more than
 * it has: -EINVAL), recording parent (an image ID, may be NULL) as docker's Parent. The same
 * config on the same layers is the same image: composing it again is idempotent. The builder's
 * states restored from a --cache-from image.
 */
int image_compose_prefix(struct image_store *s, const char *layers_image, size_t n_layers, const char *parent,
			 const json_t *config, const char *ref, char **ret_id, struct berth_error **err);

/*
 * `docker export`: write the merged tree of snapshot `id` as an uncompressed
 * tar to out_fd (mounting it if needed). out_fd is not closed.
 */
int image_snapshot_export(struct image_store *s, const char *id, int out_fd, struct berth_error **err);

/*
 * Options of image_extract_tar(). All optional (zero: docker cp's defaults
 * without ownership override).
 *   chown, uid, gid:         give every entry this owner instead of the tar's
 *   no_overwrite_dir_nondir: refuse (-EEXIST) to replace a directory with a
 *                            non-directory or the reverse (docker's
 *                            noOverwriteDirNonDir)
 */
struct image_extract_opts {
	bool chown;
	uid_t uid;
	gid_t gid;
	bool no_overwrite_dir_nondir;
};

/*
 * Extract a tar stream (plain, gzip or zstd) into the directory dirfd, with
 * the layer unpacker's safety: every entry is resolved inside dirfd as if it
 * were "/" (no "..", no symlink escapes, hardlink targets inside too).
 * Unlike a layer, ".wh." names are ordinary files. Existing files are
 * replaced, existing directories merged. Not a valid tar: -EBADMSG.
 */
int image_extract_tar(int in_fd, int dirfd, const struct image_extract_opts *opts, struct berth_error **err);

/* ------------------------------------------------------------------------ */
/* CLI                                                                      */
/* ------------------------------------------------------------------------ */

/* `berth image-store ...`: the low-level store tool (hidden command, see docs/image.md). */
int image_store_main(int argc, char **argv);

#endif
