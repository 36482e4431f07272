/*
 * seccomp.c - compile linux.seccomp to a BPF program in the runtime process
 * (libseccomp), so that the container side only makes one seccomp(2) call
 * and never allocates after clone. Syscall names the kernel/libseccomp do not
 * know are skipped, as runc does: profiles list syscalls of newer kernels.
 *
 * Compiling docker's default profile takes ~12 ms of libseccomp work, the
 * largest single step of a container start, so compiled programs are cached
 * in <state root>/.seccomp/: one file per profile, named by a hash of the
 * profile and holding the whole profile (serialised, with the libseccomp
 * version and native architecture) next to the program. A hit needs an
 * exact byte match of that key, so a hash collision or a stale, truncated or
 * foreign file only costs a recompile. The directory is as private as the
 * state root (root-only); a cache write failure is ignored.
 *
 * Syscalls newer than the profile: unless the default action allows (or is
 * already ENOSYS), a short stub runs before libseccomp's program and answers
 * ENOSYS for every syscall number above the highest one the profile names on
 * that architecture, as runc does, so that libc falls back to an older call
 * instead of treating EPERM as final (glibc's clone3, faccessat2, ...). x32
 * calls (the x86-64 audit arch with bit 30 set) go to libseccomp's program.
 */
#include <assert.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "common/fs.h"
#include "common/strbuf.h"
#include "runtime/container.h"

static int add_rule(scmp_filter_ctx ctx, const struct runtime_seccomp_rule *rule, int nr)
{
	struct scmp_arg_cmp cmp[6];
	bool dup = false;
	for (size_t i = 0; i < rule->n_args; i++) {
		cmp[i] = (struct scmp_arg_cmp){ .arg = rule->args[i].index,
						.op = (enum scmp_compare)rule->args[i].op,
						.datum_a = rule->args[i].value,
						.datum_b = rule->args[i].value_two };
		for (size_t k = 0; k < i; k++)
			if (rule->args[k].index == rule->args[i].index)
				dup = true;
	}
	if (!dup)
		return seccomp_rule_add_array(ctx, rule->action, nr, (unsigned)rule->n_args, cmp);
	/* Several conditions on one argument: one rule each (OR), like runc. */
	for (size_t i = 0; i < rule->n_args; i++) {
		int r = seccomp_rule_add_array(ctx, rule->action, nr, 1, &cmp[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static int build(scmp_filter_ctx ctx, const struct runtime_seccomp *sc, struct berth_error **err)
{
	int r;
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	for (size_t i = 0; i < sc->n_archs; i++) {
		r = seccomp_arch_add(ctx, sc->archs[i]);
		if (r < 0 && r != -EEXIST)
			return berth_error_set(err, -r, "seccomp: add architecture %u", sc->archs[i]);
	}
	for (size_t i = 0; i < sc->n_rules; i++) {
		const struct runtime_seccomp_rule *rule = &sc->rules[i];
		if (rule->action == sc->default_action)
			continue;
		for (size_t k = 0; rule->names[k]; k++) {
			int nr = seccomp_syscall_resolve_name(rule->names[k]);
			if (nr == __NR_SCMP_ERROR)
				continue;
			r = add_rule(ctx, rule, nr);
			if (r < 0)
				return berth_error_set(err, -r,
						       "'linux.seccomp.syscalls[%zu]': add rule for '%s'", i,
						       rule->names[k]);
		}
	}
	return 0;
}

#define X32_SYSCALL_BIT 0x40000000u
/* Enough for the stub: one load, 3-4 instructions per architecture (at most 3 here), two exits. */
#define STUB_MAX        24

/* Highest syscall number the profile names on arch; -1 when none resolves. */
static int max_syscall(const struct runtime_seccomp *sc, uint32_t arch)
{
	int max = -1;
	for (size_t i = 0; i < sc->n_rules; i++)
		for (size_t k = 0; sc->rules[i].names[k]; k++) {
			int nr = seccomp_syscall_resolve_name_arch(arch, sc->rules[i].names[k]);
			if (nr >= 0 && (arch != SCMP_ARCH_X86_64 || !((unsigned)nr & X32_SYSCALL_BIT)) &&
			    nr > max)
				max = nr;
		}
	return max;
}

static bool wants_enosys_stub(const struct runtime_seccomp *sc)
{
	uint32_t a = sc->default_action;
	return a != SCMP_ACT_ALLOW && a != SCMP_ACT_LOG && a != SCMP_ACT_ERRNO(ENOSYS);
}

/*
 * The ENOSYS stub; *ret_n instructions, 0 when not needed. Layout:
 *   ld arch; per arch: jeq AUDIT -> else next arch; ld nr; [jset x32 -> main]; jgt max -> enosys, main
 *   ja main; enosys: ret ERRNO(ENOSYS); main: libseccomp's program.
 */
static size_t enosys_stub(const struct runtime_seccomp *sc, struct sock_filter out[STUB_MAX])
{
	if (!wants_enosys_stub(sc))
		return 0;
	struct {
		uint32_t audit;
		int max;
	} arches[3];
	size_t na = 0;
	for (size_t i = 0; i < sc->n_archs && na < ARRAY_SIZE(arches); i++) {
		uint32_t a = sc->archs[i]; /* libseccomp's SCMP_ARCH_* are the AUDIT_ARCH_* values */
		if (a != SCMP_ARCH_X86_64 && a != SCMP_ARCH_X86 && a != SCMP_ARCH_AARCH64)
			continue;
		int max = max_syscall(sc, a);
		if (max >= 0) {
			arches[na].audit = a;
			arches[na++].max = max;
		}
	}
	if (!na)
		return 0;
	size_t len = 1 + 2;
	for (size_t i = 0; i < na; i++)
		len += arches[i].audit == AUDIT_ARCH_X86_64 ? 4 : 3;
	size_t enosys = len - 1, main_ = len, n = 0;
#define JMP(to) ((unsigned char)((to) - (n + 1)))
	out[n++] =
	    (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	for (size_t i = 0; i < na; i++) {
		bool x86_64 = arches[i].audit == AUDIT_ARCH_X86_64;
		size_t next = n + (x86_64 ? 4 : 3);
		out[n] =
		    (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arches[i].audit, 0, JMP(next));
		n++;
		out[n++] =
		    (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
		if (x86_64) {
			out[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, X32_SYSCALL_BIT,
							      JMP(main_), 0);
			n++;
		}
		out[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, (uint32_t)arches[i].max,
						      JMP(enosys), JMP(main_));
		n++;
	}
	out[n] = (struct sock_filter)BPF_STMT(BPF_JMP | BPF_JA, (uint32_t)(main_ - (n + 1)));
	n++;
	out[n++] =
	    (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA));
#undef JMP
	assert(n == len && len <= STUB_MAX);
	return n;
}

static int compile(const struct runtime_seccomp *sc, struct sock_fprog **ret, struct berth_error **err)
{
	scmp_filter_ctx ctx = seccomp_init(sc->default_action);
	if (!ctx)
		return berth_error_msg(err, EINVAL, "'linux.seccomp': cannot initialise the filter");
	int r = build(ctx, sc, err);
	if (r < 0) {
		seccomp_release(ctx);
		return r;
	}
	_cleanup_close_ int fd = memfd_create("seccomp", MFD_CLOEXEC);
	if (fd < 0) {
		seccomp_release(ctx);
		return berth_error_errno(err, "memfd_create");
	}
	r = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	if (r < 0)
		return berth_error_set(err, -r, "seccomp: export BPF");
	struct sock_filter stub[STUB_MAX];
	size_t n_stub = enosys_stub(sc, stub);
	off_t size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || size % sizeof(struct sock_filter) ||
	    size / sizeof(struct sock_filter) + n_stub > BPF_MAXINSNS)
		return berth_error_msg(err, E2BIG, "seccomp: filter too large (%lld bytes)", (long long)size);
	struct sock_fprog *p = xcalloc(1, sizeof(*p) + (size_t)size + n_stub * sizeof(struct sock_filter));
	p->len = (unsigned short)(size / sizeof(struct sock_filter) + n_stub);
	p->filter = (struct sock_filter *)(p + 1);
	memcpy(p->filter, stub, n_stub * sizeof(struct sock_filter));
	if (pread(fd, p->filter + n_stub, (size_t)size, 0) != size) {
		free(p);
		return berth_error_errno(err, "seccomp: read BPF");
	}
	*ret = p;
	return 0;
}

#define CACHE_MAGIC "berth-seccomp-bpf-2\n" /* 2: with the ENOSYS stub */

static void put(struct strbuf *sb, uint64_t v)
{
	strbuf_add(sb, &v, sizeof(v));
}

/* Everything the compiled program depends on, serialised unambiguously. */
static void cache_key(const struct runtime_seccomp *sc, struct strbuf *sb)
{
	const struct scmp_version *v = seccomp_version();
	put(sb, v ? v->major : 0);
	put(sb, v ? v->minor : 0);
	put(sb, v ? v->micro : 0);
	put(sb, seccomp_arch_native());
	put(sb, sc->default_action);
	put(sb, sc->n_archs);
	for (size_t i = 0; i < sc->n_archs; i++)
		put(sb, sc->archs[i]);
	put(sb, sc->n_rules);
	for (size_t i = 0; i < sc->n_rules; i++) {
		const struct runtime_seccomp_rule *r = &sc->rules[i];
		put(sb, r->action);
		for (size_t k = 0; r->names[k]; k++)
			strbuf_add(sb, r->names[k], strlen(r->names[k]) + 1);
		strbuf_addch(sb, '\0');
		put(sb, r->n_args);
		for (size_t k = 0; k < r->n_args; k++) {
			put(sb, r->args[k].index);
			put(sb, (uint64_t)r->args[k].op);
			put(sb, r->args[k].value);
			put(sb, r->args[k].value_two);
		}
	}
}

static uint64_t fnv1a(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static struct sock_fprog *cache_load(const char *path, const struct strbuf *key)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	size_t ml = strlen(CACHE_MAGIC), hdr = ml + sizeof(uint64_t) + key->len;
	if (fs_read_file_at(AT_FDCWD, path, hdr + BPF_MAXINSNS * sizeof(struct sock_filter), &sb, NULL) < 0 ||
	    sb.len <= hdr || memcmp(sb.buf, CACHE_MAGIC, ml) != 0)
		return NULL;
	uint64_t klen;
	memcpy(&klen, sb.buf + ml, sizeof(klen));
	size_t size = sb.len - hdr;
	if (klen != key->len || memcmp(sb.buf + ml + sizeof(klen), key->buf, key->len) != 0 ||
	    size % sizeof(struct sock_filter) || size / sizeof(struct sock_filter) > BPF_MAXINSNS)
		return NULL;
	struct sock_fprog *p = xcalloc(1, sizeof(*p) + size);
	p->len = (unsigned short)(size / sizeof(struct sock_filter));
	p->filter = (struct sock_filter *)(p + 1);
	memcpy(p->filter, sb.buf + hdr, size);
	return p;
}

static void cache_store(const char *dir, const char *path, const struct strbuf *key,
			const struct sock_fprog *p)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return;
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, CACHE_MAGIC);
	put(&sb, key->len);
	strbuf_add(&sb, key->buf, key->len);
	strbuf_add(&sb, p->filter, p->len * sizeof(struct sock_filter));
	_cleanup_free_ char *tmp = xasprintf("%s.%d.tmp", path, (int)getpid());
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return;
	if (fs_write_all(fd, sb.buf, sb.len) < 0 || rename(tmp, path) < 0)
		(void)unlink(tmp);
}

int runtime_seccomp_compile(const struct runtime_seccomp *sc, const char *cache_dir, struct sock_fprog **ret,
			    struct berth_error **err)
{
	if (!cache_dir)
		return compile(sc, ret, err);
	_cleanup_strbuf_ struct strbuf key = STRBUF_INIT;
	cache_key(sc, &key);
	_cleanup_free_ char *path =
	    xasprintf("%s/%016llx.bpf", cache_dir, (unsigned long long)fnv1a(key.buf, key.len));
	if ((*ret = cache_load(path, &key)))
		return 0;
	int r = compile(sc, ret, err);
	if (r >= 0)
		cache_store(cache_dir, path, &key, *ret);
	return r;
}

void runtime_seccomp_prog_free(struct sock_fprog *p)
{
	free(p);
}

int runtime_seccomp_install(const struct sock_fprog *prog, unsigned flags)
{
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, prog) == 0)
		return 0;
	if (errno == ENOSYS && flags == 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog) == 0)
		return 0;
	return negative_errno();
}
