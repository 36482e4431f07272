/*
 * cgroups-devices.c - linux.resources.devices on cgroup v2: the device
 * controller there is an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) attached
 * to the container's cgroup. The rules are compiled to straight-line BPF: the
 * last rule that matches decides, as with the v1 devices list; when none
 * matches, the default of the last "all devices" rule applies.
 */
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/syscall.h>

#include "runtime/cgroups.h"

#define MAX_INSNS 4096

struct emitter {
	struct bpf_insn insn[MAX_INSNS];
	size_t n;
	bool overflow;
};

static void emit(struct emitter *e, struct bpf_insn i)
{
	if (e->n >= MAX_INSNS) {
		e->overflow = true;
		return;
	}
	e->insn[e->n++] = i;
}

#define INSN(c, d, s, o, i) \
	((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })

/* r2 = type, r3 = access, r4 = major, r5 = minor (from struct bpf_cgroup_dev_ctx in r1). */
static void emit_prologue(struct emitter *e)
{
	emit(e, INSN(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 0, 0));
	emit(e, INSN(BPF_ALU | BPF_AND | BPF_K, 2, 0, 0, 0xffff));
	emit(e, INSN(BPF_LDX | BPF_MEM | BPF_W, 3, 1, 0, 0));
	emit(e, INSN(BPF_ALU | BPF_RSH | BPF_K, 3, 0, 0, 16));
	emit(e, INSN(BPF_LDX | BPF_MEM | BPF_W, 4, 1, 4, 0));
	emit(e, INSN(BPF_LDX | BPF_MEM | BPF_W, 5, 1, 8, 0));
}

static int access_mask(const char *a)
{
	int m = 0;
	for (; *a; a++)
		m |= *a == 'm' ? BPF_DEVCG_ACC_MKNOD : *a == 'r' ? BPF_DEVCG_ACC_READ : BPF_DEVCG_ACC_WRITE;
	return m;
}

/* One rule: a block that returns the rule's verdict when every test passes, else falls through. */
static void emit_rule(struct emitter *e, const struct runtime_device_rule *r)
{
	struct bpf_insn blk[12];
	size_t n = 0;
	int acc = access_mask(r->access);
	if (r->type != 'a')
		blk[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 0,
				r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
	if (acc != (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)) {
		/* the request must be a subset of the rule's access: r0 = r3 & ~acc; r0 != 0 -> next */
		blk[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, 0, 3, 0, 0);
		blk[n++] = INSN(BPF_ALU | BPF_AND | BPF_K, 0, 0, 0, ~acc);
		blk[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, 0, 0, 0, 0);
	}
	if (r->major >= 0)
		blk[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, 4, 0, 0, (int)r->major);
	if (r->minor >= 0)
		blk[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, 5, 0, 0, (int)r->minor);
	blk[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, r->allow ? 1 : 0);
	blk[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	/* every conditional jump skips to the end of the block */
	for (size_t i = 0; i < n; i++)
		if (BPF_CLASS(blk[i].code) == BPF_JMP && BPF_OP(blk[i].code) == BPF_JNE)
			blk[i].off = (short)(n - i - 1);
	for (size_t i = 0; i < n; i++)
		emit(e, blk[i]);
}

static bool is_all(const struct runtime_device_rule *r)
{
	return r->type == 'a' && r->major < 0 && r->minor < 0 && access_mask(r->access) == 7;
}

int runtime_cgroup_devices_program(const struct runtime_device_rule *rules, size_t n,
				   const struct runtime_device_rule *extra, size_t n_extra,
				   struct bpf_insn **ret, size_t *ret_n)
{
	struct emitter *e = xcalloc(1, sizeof(*e));
	size_t total = n + n_extra, first = 0;
	bool default_allow = true;
	/* rules before the last "all devices" rule are overridden by it */
	for (size_t i = 0; i < total; i++) {
		const struct runtime_device_rule *r = i < n ? &rules[i] : &extra[i - n];
		if (is_all(r)) {
			default_allow = r->allow;
			first = i + 1;
		}
	}
	emit_prologue(e);
	for (size_t i = total; i-- > first;)
		emit_rule(e, i < n ? &rules[i] : &extra[i - n]);
	emit(e, INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, default_allow ? 1 : 0));
	emit(e, INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
	if (e->overflow) {
		free(e);
		return -E2BIG;
	}
	*ret = xmalloc(e->n * sizeof(struct bpf_insn));
	memcpy(*ret, e->insn, e->n * sizeof(struct bpf_insn));
	*ret_n = e->n;
	free(e);
	return 0;
}

static int prog_load(const struct bpf_insn *insn, size_t n, char *log, size_t log_size)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	a.insns = (uint64_t)(uintptr_t)insn;
	a.insn_cnt = (uint32_t)n;
	a.license = (uint64_t)(uintptr_t) "Apache-2.0";
	if (log) {
		a.log_buf = (uint64_t)(uintptr_t)log;
		a.log_size = (uint32_t)log_size;
		a.log_level = 1;
	}
	return (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof(a));
}

int runtime_cgroup_devices_attach(const char *dir, const struct bpf_insn *insn, size_t n,
				  struct berth_error **err)
{
	union bpf_attr a;
	int prog = prog_load(insn, n, NULL, 0);
	if (prog < 0) {
		/* again with the verifier's log, for the message (the log needs room: 64 KiB) */
		int e = errno;
		_cleanup_free_ char *log = xcalloc(1, 65536);
		int p2 = prog_load(insn, n, log, 65536);
		if (p2 >= 0)
			close(p2);
		char *last = strrchr(log, '\n');
		while (last && last > log && last[1] == 0) {
			*last = 0;
			last = strrchr(log, '\n');
		}
		return berth_error_set(err, e, "load the device filter (eBPF)%s%s", last ? ": " : "",
				       last ? last + 1 : "");
	}
	_cleanup_close_ int cg = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0) {
		close(prog);
		return berth_error_errno(err, "open cgroup '%s'", dir);
	}
	memset(&a, 0, sizeof(a));
	a.target_fd = (uint32_t)cg;
	a.attach_bpf_fd = (uint32_t)prog;
	a.attach_type = BPF_CGROUP_DEVICE;
	a.attach_flags = BPF_F_ALLOW_MULTI;
	int r = (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &a, sizeof(a));
	int e = errno;
	close(prog); /* the attachment keeps the program alive; it goes with the cgroup */
	if (r < 0)
		return berth_error_set(err, e, "attach the device filter to '%s'", dir);
	return 0;
}
