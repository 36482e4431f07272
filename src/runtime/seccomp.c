/*
 * seccomp.c - compile linux.seccomp to a BPF program in the runtime process
 * (libseccomp), so that the container side only makes one seccomp(2) call
 * and never allocates after clone. Syscall names the kernel/libseccomp do not
 * know are skipped, as runc does: profiles list syscalls of newer kernels.
 */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

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

int seccomp_compile(const struct runtime_seccomp *sc, struct sock_fprog **ret, struct berth_error **err)
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
	off_t size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || size % sizeof(struct sock_filter) ||
	    size / sizeof(struct sock_filter) > BPF_MAXINSNS)
		return berth_error_msg(err, E2BIG, "seccomp: filter too large (%lld bytes)", (long long)size);
	struct sock_fprog *p = xcalloc(1, sizeof(*p) + (size_t)size);
	p->len = (unsigned short)(size / sizeof(struct sock_filter));
	p->filter = (struct sock_filter *)(p + 1);
	if (pread(fd, p->filter, (size_t)size, 0) != size) {
		free(p);
		return berth_error_errno(err, "seccomp: read BPF");
	}
	*ret = p;
	return 0;
}

void seccomp_prog_free(struct sock_fprog *p)
{
	free(p);
}

int seccomp_install(const struct sock_fprog *prog, unsigned flags)
{
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, prog) == 0)
		return 0;
	if (errno == ENOSYS && flags == 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog) == 0)
		return 0;
	return negative_errno();
}
