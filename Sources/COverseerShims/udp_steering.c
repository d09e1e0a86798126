// The steering of a UDP listener's datagrams between generations: a
// BPF_PROG_TYPE_SK_REUSEPORT program attached to the SO_REUSEPORT group that
// holds every generation's socket, and its four maps. Loaded with bpf(2)
// directly: the program is small enough to be written out below, one comment
// per step, and SwiftPM on a fresh machine has no step that could compile
// restricted C for `-target bpf`; libbpf would add a library (and libelf) to
// the process that holds the listeners for what is ~110 instructions.
//
// What the program does with a datagram (pseudo-C):
//
//   key = { source and destination address, source and destination port, family }
//   config = config_map[0]                      // { newest slot, flow timeout }
//   flow = flows[key]                           // { slot, tag, last seen }
//   if flow && now - flow.last_seen <= config.timeout && tags[flow.slot] == flow.tag:
//       flow.last_seen = now
//       if select(sockets[flow.slot]) succeeds: deliver there
//   // a new flow, or one whose socket is gone or that expired:
//   flows[key] = { config.newest, tags[config.newest], now }
//   select(sockets[config.newest])
//
// A slot's tag names the socket in it (overseerd numbers them, never 0): a
// flow stays with the socket that took it, not with whatever later sits in its
// slot. When no socket can be selected the program passes the datagram on and
// the kernel picks a socket of the group by its hash, as without a program.
#define _GNU_SOURCE
#include "overseer_shims.h"

#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <arpa/inet.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_ATTACH_REUSEPORT_EBPF
#define SO_ATTACH_REUSEPORT_EBPF 52
#endif
#ifndef SYS_bpf
#define SYS_bpf 321
#endif

static int bpf_call(int command, union bpf_attr *attr) {
    int rc;
    do {
        rc = (int)syscall(SYS_bpf, command, attr, sizeof *attr);
    } while (rc < 0 && errno == EINTR);
    return rc;
}

static int create_map(uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t max_entries, const char *name) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = type;
    attr.key_size = key_size;
    attr.value_size = value_size;
    attr.max_entries = max_entries;
    attr.map_flags = 0;
    strncpy(attr.map_name, name, sizeof attr.map_name - 1);
    return bpf_call(BPF_MAP_CREATE, &attr);
}

static int update(int map_fd, const void *key, const void *value, uint64_t flags) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_fd = (uint32_t)map_fd;
    attr.key = (uint64_t)(uintptr_t)key;
    attr.value = (uint64_t)(uintptr_t)value;
    attr.flags = flags;
    return bpf_call(BPF_MAP_UPDATE_ELEM, &attr);
}

// MARK: - A small assembler: instructions, and jumps to labels resolved at the end.

enum { MAX_INSNS = 128, MAX_LABELS = 8, MAX_JUMPS = 24 };

typedef struct {
    struct bpf_insn insns[MAX_INSNS];
    int count;
    int label_at[MAX_LABELS];
    struct { int insn; int label; } jumps[MAX_JUMPS];
    int jump_count;
    int overflow;
} assembler;

static void emit(assembler *a, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    if (a->count >= MAX_INSNS) { a->overflow = 1; return; }
    struct bpf_insn insn;
    memset(&insn, 0, sizeof insn);
    insn.code = code;
    insn.dst_reg = dst & 0xf;
    insn.src_reg = src & 0xf;
    insn.off = off;
    insn.imm = imm;
    a->insns[a->count++] = insn;
}

static void jump(assembler *a, uint8_t op, uint8_t dst, uint8_t src_or_k, int is_reg, int32_t imm, int label) {
    if (a->jump_count >= MAX_JUMPS) { a->overflow = 1; return; }
    a->jumps[a->jump_count].insn = a->count;
    a->jumps[a->jump_count].label = label;
    a->jump_count++;
    emit(a, BPF_JMP | op | (is_reg ? BPF_X : BPF_K), dst, is_reg ? src_or_k : 0, 0, imm);
}

static void place(assembler *a, int label) { a->label_at[label] = a->count; }

static void resolve(assembler *a) {
    for (int i = 0; i < a->jump_count; i++) {
        int target = a->label_at[a->jumps[i].label];
        a->insns[a->jumps[i].insn].off = (int16_t)(target - a->jumps[i].insn - 1);
    }
}

#define R0 BPF_REG_0
#define R1 BPF_REG_1
#define R2 BPF_REG_2
#define R3 BPF_REG_3
#define R4 BPF_REG_4
#define R5 BPF_REG_5
#define R6 BPF_REG_6
#define R7 BPF_REG_7
#define R8 BPF_REG_8
#define R9 BPF_REG_9
#define FP BPF_REG_10

static void mov_reg(assembler *a, uint8_t dst, uint8_t src) { emit(a, BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
static void mov_imm(assembler *a, uint8_t dst, int32_t imm) { emit(a, BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
static void add_imm(assembler *a, uint8_t dst, int32_t imm) { emit(a, BPF_ALU64 | BPF_ADD | BPF_K, dst, 0, 0, imm); }
static void sub_reg(assembler *a, uint8_t dst, uint8_t src) { emit(a, BPF_ALU64 | BPF_SUB | BPF_X, dst, src, 0, 0); }
static void load(assembler *a, uint8_t size, uint8_t dst, uint8_t src, int16_t off) { emit(a, BPF_LDX | BPF_MEM | size, dst, src, off, 0); }
static void store(assembler *a, uint8_t size, uint8_t dst, int16_t off, uint8_t src) { emit(a, BPF_STX | BPF_MEM | size, dst, src, off, 0); }
static void store_imm(assembler *a, uint8_t size, uint8_t dst, int16_t off, int32_t imm) { emit(a, BPF_ST | BPF_MEM | size, dst, 0, off, imm); }
static void call(assembler *a, int32_t helper) { emit(a, BPF_JMP | BPF_CALL, 0, 0, 0, helper); }
static void map_fd(assembler *a, uint8_t dst, int fd) {
    emit(a, BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, fd);
    emit(a, 0, 0, 0, 0, 0);
}
/// r3 = fp + offset: a pointer to the stack, for a helper's argument.
static void stack_pointer(assembler *a, uint8_t dst, int16_t offset) { mov_reg(a, dst, FP); add_imm(a, dst, offset); }

// The stack (offsets from the frame pointer r10):
enum {
    KEY = -40,          // struct flow key, 40 bytes: addresses [32], ports [4], family (u32)
    KEY_PORTS = -8,
    KEY_FAMILY = -4,
    NEW_FLOW = -56,     // struct flow value, 16 bytes: slot (u32), tag (u32), last seen (u64 ns)
    SLOT = -60,         // u32: the slot being looked up or selected
    ZERO = -64,         // u32 0: the config map's one key
};
// The labels.
enum { IPV4, PORTS, NEW, PASS };

static int assemble(assembler *a, int config_fd, int flows_fd, int tags_fd, int sockets_fd) {
    memset(a, 0, sizeof *a);
    mov_reg(a, R6, R1);                                   // r6 = the context (struct sk_reuseport_md *)
    for (int off = KEY; off < 0; off += 8) store_imm(a, BPF_DW, FP, (int16_t)off, 0); // key = {0}
    load(a, BPF_W, R0, R6, offsetof(struct sk_reuseport_md, eth_protocol)); // r0 = the packet's protocol (network order)
    jump(a, BPF_JEQ, R0, 0, 0, htons(ETH_P_IP), IPV4);   // IPv4?
    jump(a, BPF_JNE, R0, 0, 0, htons(ETH_P_IPV6), PASS); // neither: leave it to the kernel
    // IPv6: source and destination address, 32 bytes at offset 8 of the IPv6 header.
    mov_reg(a, R1, R6); mov_imm(a, R2, 8); stack_pointer(a, R3, KEY); mov_imm(a, R4, 32); mov_imm(a, R5, BPF_HDR_START_NET);
    call(a, BPF_FUNC_skb_load_bytes_relative);
    jump(a, BPF_JNE, R0, 0, 0, 0, PASS);
    store_imm(a, BPF_W, FP, KEY_FAMILY, 6);
    jump(a, BPF_JA, 0, 0, 0, 0, PORTS);
    place(a, IPV4);                                       // IPv4: the addresses, 8 bytes at offset 12.
    mov_reg(a, R1, R6); mov_imm(a, R2, 12); stack_pointer(a, R3, KEY); mov_imm(a, R4, 8); mov_imm(a, R5, BPF_HDR_START_NET);
    call(a, BPF_FUNC_skb_load_bytes_relative);
    jump(a, BPF_JNE, R0, 0, 0, 0, PASS);
    store_imm(a, BPF_W, FP, KEY_FAMILY, 4);
    place(a, PORTS);                                      // Both ports: the UDP header's first 4 bytes (data starts there).
    mov_reg(a, R1, R6); mov_imm(a, R2, 0); stack_pointer(a, R3, KEY_PORTS); mov_imm(a, R4, 4);
    call(a, BPF_FUNC_skb_load_bytes);
    jump(a, BPF_JNE, R0, 0, 0, 0, PASS);
    call(a, BPF_FUNC_ktime_get_ns); mov_reg(a, R9, R0);   // r9 = now (CLOCK_MONOTONIC)
    store_imm(a, BPF_W, FP, ZERO, 0);                     // r7 = config[0]
    map_fd(a, R1, config_fd); stack_pointer(a, R2, ZERO); call(a, BPF_FUNC_map_lookup_elem);
    jump(a, BPF_JEQ, R0, 0, 0, 0, PASS);
    mov_reg(a, R7, R0);
    map_fd(a, R1, flows_fd); stack_pointer(a, R2, KEY); call(a, BPF_FUNC_map_lookup_elem); // r8 = flows[key]
    jump(a, BPF_JEQ, R0, 0, 0, 0, NEW);
    mov_reg(a, R8, R0);
    load(a, BPF_DW, R1, R8, 8); mov_reg(a, R2, R9); sub_reg(a, R2, R1); // r2 = now - last seen
    load(a, BPF_DW, R3, R7, 8);                           // r3 = the timeout
    jump(a, BPF_JGT, R2, R3, 1, 0, NEW);                  // expired: a new flow
    load(a, BPF_W, R1, R8, 0); store(a, BPF_W, FP, SLOT, R1); // slot = flow.slot
    map_fd(a, R1, tags_fd); stack_pointer(a, R2, SLOT); call(a, BPF_FUNC_map_lookup_elem);
    jump(a, BPF_JEQ, R0, 0, 0, 0, NEW);
    load(a, BPF_W, R1, R0, 0); load(a, BPF_W, R2, R8, 4); // tags[slot] == flow.tag: its socket is still there
    jump(a, BPF_JNE, R1, R2, 1, 0, NEW);
    store(a, BPF_DW, R8, 8, R9);                          // flow.last_seen = now
    mov_reg(a, R1, R6); map_fd(a, R2, sockets_fd); stack_pointer(a, R3, SLOT); mov_imm(a, R4, 0);
    call(a, BPF_FUNC_sk_select_reuseport);                // deliver to sockets[slot]
    jump(a, BPF_JEQ, R0, 0, 0, 0, PASS);
    place(a, NEW);                                        // A new flow: to the newest slot.
    load(a, BPF_W, R1, R7, 0); store(a, BPF_W, FP, SLOT, R1); store(a, BPF_W, FP, NEW_FLOW, R1);
    map_fd(a, R1, tags_fd); stack_pointer(a, R2, SLOT); call(a, BPF_FUNC_map_lookup_elem);
    jump(a, BPF_JEQ, R0, 0, 0, 0, PASS);
    load(a, BPF_W, R1, R0, 0);
    jump(a, BPF_JEQ, R1, 0, 0, 0, PASS);                  // an empty slot: nothing to pin the flow to
    store(a, BPF_W, FP, NEW_FLOW + 4, R1); store(a, BPF_DW, FP, NEW_FLOW + 8, R9); // { slot, tag, now }
    map_fd(a, R1, flows_fd); stack_pointer(a, R2, KEY); stack_pointer(a, R3, NEW_FLOW); mov_imm(a, R4, BPF_ANY);
    call(a, BPF_FUNC_map_update_elem);                    // flows[key] = it
    mov_reg(a, R1, R6); map_fd(a, R2, sockets_fd); stack_pointer(a, R3, SLOT); mov_imm(a, R4, 0);
    call(a, BPF_FUNC_sk_select_reuseport);
    place(a, PASS);
    mov_imm(a, R0, SK_PASS);                              // deliver (to the selected socket, if one was)
    emit(a, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    if (a->overflow) return -1;
    resolve(a);
    return 0;
}

// MARK: - The public part

static void close_all(overseer_udp_steering *s) {
    int *fds[] = { &s->program_fd, &s->sockets_fd, &s->flows_fd, &s->tags_fd, &s->config_fd };
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
        if (*fds[i] >= 0) close(*fds[i]);
        *fds[i] = -1;
    }
}

int overseer_udp_steering_create(uint32_t slots, uint32_t max_flows, uint64_t timeout_ns,
                                 overseer_udp_steering *out, int *stage_out, char *log, size_t log_size) {
    overseer_udp_steering s = { -1, -1, -1, -1, -1 };
    *stage_out = OVERSEER_STEERING_STAGE_MAPS;
    s.config_fd = create_map(BPF_MAP_TYPE_ARRAY, 4, sizeof(overseer_steering_config), 1, "ovs_config");
    if (s.config_fd < 0) goto fail;
    s.tags_fd = create_map(BPF_MAP_TYPE_ARRAY, 4, 4, slots, "ovs_tags");
    if (s.tags_fd < 0) goto fail;
    *stage_out = OVERSEER_STEERING_STAGE_SOCKARRAY;
    s.sockets_fd = create_map(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, 4, 8, slots, "ovs_sockets");
    if (s.sockets_fd < 0) goto fail;
    *stage_out = OVERSEER_STEERING_STAGE_FLOWS;
    s.flows_fd = create_map(BPF_MAP_TYPE_LRU_HASH, sizeof(overseer_flow_key), sizeof(overseer_flow_value), max_flows, "ovs_flows");
    if (s.flows_fd < 0) goto fail;
    overseer_steering_config config = { 0, 0, timeout_ns };
    uint32_t zero = 0;
    *stage_out = OVERSEER_STEERING_STAGE_MAPS;
    if (update(s.config_fd, &zero, &config, BPF_ANY) < 0) goto fail;

    *stage_out = OVERSEER_STEERING_STAGE_PROGRAM;
    assembler a;
    if (assemble(&a, s.config_fd, s.flows_fd, s.tags_fd, s.sockets_fd) < 0) { errno = E2BIG; goto fail; }
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_SK_REUSEPORT;
    attr.expected_attach_type = BPF_SK_REUSEPORT_SELECT;
    attr.insns = (uint64_t)(uintptr_t)a.insns;
    attr.insn_cnt = (uint32_t)a.count;
    // MIT, which the kernel counts among the GPL-compatible licences when dual.
    attr.license = (uint64_t)(uintptr_t)"Dual MIT/GPL";
    strncpy(attr.prog_name, "overseerd_udp", sizeof attr.prog_name - 1);
    if (log && log_size > 0) log[0] = 0;
    s.program_fd = bpf_call(BPF_PROG_LOAD, &attr);
    if (s.program_fd < 0 && (errno == EACCES || errno == EINVAL) && log && log_size > 0) {
        // Refused: load once more with the verifier's log on, to say why.
        int saved = errno;
        attr.log_buf = (uint64_t)(uintptr_t)log;
        attr.log_size = (uint32_t)log_size;
        attr.log_level = 1;
        int again = bpf_call(BPF_PROG_LOAD, &attr);
        if (again >= 0) close(again);
        errno = saved;
    }
    if (s.program_fd < 0) goto fail;
    *out = s;
    return 0;
fail:;
    int saved = errno;
    close_all(&s);
    errno = saved;
    return -1;
}

void overseer_udp_steering_close(overseer_udp_steering *s) { close_all(s); }

int overseer_udp_steering_attach(int program_fd, int socket_fd) {
    return setsockopt(socket_fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &program_fd, sizeof program_fd);
}

int overseer_udp_steering_set_slot(const overseer_udp_steering *s, uint32_t slot, int socket_fd, uint32_t tag) {
    uint64_t fd = (uint64_t)socket_fd;
    if (update(s->sockets_fd, &slot, &fd, BPF_ANY) < 0) return -1;
    return update(s->tags_fd, &slot, &tag, BPF_ANY);
}

int overseer_udp_steering_clear_slot(const overseer_udp_steering *s, uint32_t slot) {
    uint32_t empty = 0;
    // The tag first: from then on the slot's flows are new flows, whatever the socket does.
    if (update(s->tags_fd, &slot, &empty, BPF_ANY) < 0) return -1;
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_fd = (uint32_t)s->sockets_fd;
    attr.key = (uint64_t)(uintptr_t)&slot;
    // ENOENT: the kernel took the socket out already (it closed).
    if (bpf_call(BPF_MAP_DELETE_ELEM, &attr) < 0 && errno != ENOENT) return -1;
    return 0;
}

int overseer_udp_steering_configure(const overseer_udp_steering *s, uint32_t newest_slot, uint64_t timeout_ns) {
    overseer_steering_config config = { newest_slot, 0, timeout_ns };
    uint32_t zero = 0;
    return update(s->config_fd, &zero, &config, BPF_ANY);
}

int64_t overseer_udp_steering_count_flows(const overseer_udp_steering *s, const uint32_t *tags, uint32_t slots,
                                          uint64_t timeout_ns, uint64_t *counts) {
    enum { BATCH = 1024 };
    static __thread overseer_flow_key keys[BATCH];
    static __thread overseer_flow_value values[BATCH];
    struct timespec now_ts;
    clock_gettime(CLOCK_MONOTONIC, &now_ts);
    uint64_t now = (uint64_t)now_ts.tv_sec * 1000000000ull + (uint64_t)now_ts.tv_nsec;
    for (uint32_t i = 0; i < slots; i++) counts[i] = 0;
    int64_t total = 0;
    overseer_flow_key position;
    int first = 1;
    for (;;) {
        union bpf_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.batch.map_fd = (uint32_t)s->flows_fd;
        attr.batch.in_batch = first ? 0 : (uint64_t)(uintptr_t)&position;
        attr.batch.out_batch = (uint64_t)(uintptr_t)&position;
        attr.batch.keys = (uint64_t)(uintptr_t)keys;
        attr.batch.values = (uint64_t)(uintptr_t)values;
        attr.batch.count = BATCH;
        int rc = bpf_call(BPF_MAP_LOOKUP_BATCH, &attr);
        int done = rc < 0 && errno == ENOENT;
        if (rc < 0 && !done) return -1;
        for (uint32_t i = 0; i < attr.batch.count && i < BATCH; i++) {
            const overseer_flow_value *v = &values[i];
            if (v->slot >= slots || v->tag == 0 || tags[v->slot] != v->tag) continue;
            if (now > v->last_seen_ns && now - v->last_seen_ns > timeout_ns) continue;
            counts[v->slot]++;
            total++;
        }
        if (done) break;
        first = 0;
    }
    return total;
}
