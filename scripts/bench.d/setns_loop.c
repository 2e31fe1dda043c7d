/* Baselines for `scripts/bench guard`, microseconds per cycle:
 * - c_two_setns_us: the cheapest possible enter + restore of a net namespace, two setns(2)
 *   calls on fds opened once;
 * - c_cold_us: the floor for a cold cycle, the Python package's system calls without Python
 *   (open the target's and our own namespace file, two setns, two close). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: setns_loop PID CYCLES\n"); return 2; }
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/ns/net", argv[1]);
    long cycles = atol(argv[2]);
    int target = open(path, O_RDONLY | O_CLOEXEC);
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (target < 0 || home < 0) { perror("open"); return 1; }
    for (long i = 0; i < cycles / 10; i++) { setns(target, CLONE_NEWNET); setns(home, CLONE_NEWNET); }
    double start = now_us();
    for (long i = 0; i < cycles; i++) {
        if (setns(target, CLONE_NEWNET) || setns(home, CLONE_NEWNET)) { perror("setns"); return 1; }
    }
    printf("c_two_setns_us %.3f\n", (now_us() - start) / cycles);
    start = now_us();
    for (long i = 0; i < cycles; i++) {
        int t = open(path, O_RDONLY | O_CLOEXEC), h = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (t < 0 || h < 0 || setns(t, CLONE_NEWNET) || setns(h, CLONE_NEWNET)) { perror("cold"); return 1; }
        close(t);
        close(h);
    }
    printf("c_cold_us %.3f\n", (now_us() - start) / cycles);
    return 0;
}
