/*
 * vmvc-memtool: memory bandwidth and memory latency, the same static binary in every backend.
 *
 *   vmvc-memtool bandwidth WORKING_SET_MIB SECONDS THREADS
 *   vmvc-memtool latency WORKING_SET_MIB SECONDS
 *
 * bandwidth: STREAM's copy (c = a) and triad (a = b + s*c) kernels (J. D. McCalpin, "Memory
 * Bandwidth and Machine Balance in Current High Performance Computers", IEEE TCCA Newsletter,
 * 1995; https://www.cs.virginia.edu/stream/). The three arrays together are the working set;
 * STREAM's rule is a working set of at least 4x the last-level cache, or the caches answer
 * and the figure is cache bandwidth. Each thread streams its own slice of the arrays until
 * the deadline; the first pass (page faults) is not counted. Bytes per element as STREAM
 * counts them: copy 16, triad 24.
 *
 * latency: a dependent random pointer chase, one pointer per 64-byte cache line, over a
 * working set far larger than the last-level cache and the TLB reach. The next line comes
 * from a random cyclic permutation (Sattolo's algorithm: one cycle through every line), so
 * neither the prefetcher nor out-of-order execution can overlap the misses; each access
 * pays a cache miss and, mostly, a TLB miss with a page walk -- under a hypervisor a
 * two-dimensional one. Transparent huge pages are refused for the region (MADV_NOHUGEPAGE)
 * so every backend walks 4 KiB pages.
 *
 * Output: one line of key=value pairs per test, parsed by vmvc/bench/memory.py.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define LINE 64
#define MIB (1024.0 * 1024.0)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *map_region(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("vmvc-memtool: mmap");
        exit(1);
    }
    madvise(p, bytes, MADV_NOHUGEPAGE); /* best effort: 4 KiB pages everywhere */
    return p;
}

struct slice {
    double *a, *b, *c;
    size_t n;
    double phase_seconds;
    pthread_barrier_t *barrier;
    double copy_bytes, copy_time, triad_bytes, triad_time, copy_best, triad_best;
};

static void *stream_slice(void *arg) {
    struct slice *s = arg;
    const double scalar = 3.0;
    for (size_t i = 0; i < s->n; i++) { /* first touch by the thread that streams it */
        s->a[i] = 1.0;
        s->b[i] = 2.0;
        s->c[i] = 0.0;
    }
    pthread_barrier_wait(s->barrier);
    for (int kernel = 0; kernel < 2; kernel++) {
        double bytes_per_pass = (kernel == 0 ? 16.0 : 24.0) * s->n, total = 0, best = 0;
        double start = now(), deadline = start + s->phase_seconds, counted_from = 0;
        int pass = 0;
        for (;;) {
            double t0 = now();
            if (kernel == 0)
                for (size_t i = 0; i < s->n; i++) s->c[i] = s->a[i];
            else
                for (size_t i = 0; i < s->n; i++) s->a[i] = s->b[i] + scalar * s->c[i];
            double t1 = now();
            if (pass++ == 0) {
                counted_from = t1; /* the first pass warms up; it is not counted */
            } else {
                total += bytes_per_pass;
                if (bytes_per_pass / (t1 - t0) > best) best = bytes_per_pass / (t1 - t0);
            }
            if (t1 >= deadline && pass >= 3) {
                if (kernel == 0) {
                    s->copy_bytes = total, s->copy_time = t1 - counted_from, s->copy_best = best;
                } else {
                    s->triad_bytes = total, s->triad_time = t1 - counted_from;
                    s->triad_best = best;
                }
                break;
            }
        }
        pthread_barrier_wait(s->barrier);
    }
    return NULL;
}

static int bandwidth(size_t working_set_mib, double seconds, int threads) {
    size_t n = (size_t)(working_set_mib * MIB / 3 / sizeof(double)); /* elements per array */
    double *a = map_region(n * sizeof(double)), *b = map_region(n * sizeof(double));
    double *c = map_region(n * sizeof(double));
    pthread_t tid[threads];
    struct slice slices[threads];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, threads);
    for (int t = 0; t < threads; t++) {
        size_t lo = n * t / threads, hi = n * (t + 1) / threads;
        slices[t] = (struct slice){a + lo, b + lo, c + lo, hi - lo, seconds / 2, &barrier};
        pthread_create(&tid[t], NULL, stream_slice, &slices[t]);
    }
    double copy = 0, triad = 0, copy_best = 0, triad_best = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        /* threads run concurrently: the machine's rate is the sum of theirs */
        copy += slices[t].copy_bytes / slices[t].copy_time;
        triad += slices[t].triad_bytes / slices[t].triad_time;
        copy_best += slices[t].copy_best;
        triad_best += slices[t].triad_best;
    }
    printf("vmvc-memtool bandwidth threads=%d working_set_mib=%zu array_mib=%.1f "
           "copy_mib_s=%.1f triad_mib_s=%.1f copy_best_mib_s=%.1f triad_best_mib_s=%.1f\n",
           threads, working_set_mib, n * sizeof(double) / MIB, copy / MIB, triad / MIB,
           copy_best / MIB, triad_best / MIB);
    return 0;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull; /* fixed seed: the same chase every run */
static uint64_t xorshift64(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int latency(size_t working_set_mib, double seconds) {
    size_t lines = (size_t)(working_set_mib * MIB / LINE);
    char *base = map_region(lines * LINE);
    /* Sattolo: start from the identity, swap each i with a random j < i -> one single cycle */
    for (size_t i = 0; i < lines; i++) *(uint64_t *)(base + i * LINE) = i;
    for (size_t i = lines - 1; i > 0; i--) {
        size_t j = xorshift64() % i;
        uint64_t *x = (uint64_t *)(base + i * LINE), *y = (uint64_t *)(base + j * LINE);
        uint64_t tmp = *x;
        *x = *y;
        *y = tmp;
    }
    for (size_t i = 0; i < lines; i++) { /* index -> address, for a pure load chain */
        uint64_t next = *(uint64_t *)(base + i * LINE);
        *(void **)(base + i * LINE) = base + next * LINE;
    }
    void **p = (void **)base;
    const long chunk = 1L << 20;
    long accesses = 0;
    double start = now(), elapsed;
    do {
        for (long k = 0; k < chunk; k++) p = (void **)*p;
        accesses += chunk;
        elapsed = now() - start;
    } while (elapsed < seconds);
    printf("vmvc-memtool latency working_set_mib=%zu stride_bytes=%d page_kib=4 accesses=%ld "
           "seconds=%.3f ns_per_access=%.2f end=%p\n",
           working_set_mib, LINE, accesses, elapsed, elapsed * 1e9 / accesses, (void *)p);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && argv[1][0] == 'b') {
        int threads = argc >= 5 ? atoi(argv[4]) : 1;
        if (atol(argv[2]) < 3 || atof(argv[3]) <= 0 || threads < 1 || threads > 256) goto usage;
        return bandwidth((size_t)atol(argv[2]), atof(argv[3]), threads);
    }
    if (argc == 4 && argv[1][0] == 'l') {
        if (atol(argv[2]) < 1 || atof(argv[3]) <= 0) goto usage;
        return latency((size_t)atol(argv[2]), atof(argv[3]));
    }
usage:
    fprintf(stderr, "usage: vmvc-memtool bandwidth MIB SECONDS THREADS | latency MIB SECONDS\n");
    return 2;
}
