/*
 * bench_engine.c - engine benchmark: the same three jobs (hello, a
 * CPU-bound loop, a 66 KiB context) through the C API with worker
 * processes, and in this process straight on a VM without workers, so the
 * cost of the process hop shows.  Built by `make build/bench_engine`,
 * run by scripts/bench-engine.sh; prints one table.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/base64.h"
#include "common/buffer.h"
#include "luapool.h"
#include "vm/vm.h"
#include "vm/vm_request.h"

struct workload {
	const char *name;
	const char *source;
	char *context;		/* JSON object text */
	char *request;		/* {"bytecode": b64, "context": ...} */
	void *bytecode;
	size_t bytecode_len;
	const char *expect;	/* a substring of the answer */
	int jobs;
};

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 500 items like the peer benchmark's bigctx (about 66 KiB). */
static char *
make_big_context(void)
{
	static const char *const words[] = { "alpha", "bravo", "charlie", "delta", "echo",
		"foxtrot", "golf", "hotel" };
	struct buffer b;
	buffer_init(&b, 0);
	unsigned seed = 12345;
	buffer_append_string(&b, "{\"items\":[");
	for (int i = 1; i <= 500; i++) {
		seed = seed * 1103515245u + 12345u;
		unsigned r = seed >> 8;
		buffer_printf(&b, "%s{\"id\":%d,\"name\":\"item-%05d-%s\",\"sku\":\"SKU-%08u\","
		    "\"price\":%u.%02u,\"qty\":%u,\"tag\":\"%s-%s\",\"note\":\"%s %s %s %s\"}",
		    i > 1 ? "," : "", i, i, words[r % 8], r % 100000000u, r % 1000u, r % 100u,
		    r % 100u, words[(r >> 3) % 8], words[(r >> 6) % 8], words[(r >> 9) % 8],
		    words[(r >> 12) % 8], words[(r >> 15) % 8], words[(r >> 18) % 8]);
	}
	buffer_append_string(&b, "]}");
	return buffer_steal(&b, NULL);
}

static int
prepare(struct luapool *pool, struct workload *w)
{
	struct luapool_error err;
	w->bytecode = luapool_compile(pool, w->source, strlen(w->source), w->name,
	    &w->bytecode_len, &err);
	if (w->bytecode == NULL) {
		fprintf(stderr, "%s: %s\n", w->name, err.message);
		return -1;
	}
	char *b64 = malloc(base64_encoded_size(w->bytecode_len) + 1);
	base64_encode(w->bytecode, w->bytecode_len, b64);
	struct buffer b;
	buffer_init(&b, 0);
	buffer_printf(&b, "{\"bytecode\":\"%s\",\"context\":%s,\"timeout_ms\":10000}", b64, w->context);
	w->request = buffer_steal(&b, NULL);
	free(b64);
	return 0;
}

struct inflight {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int outstanding, done, failed;
	const char *expect;
};

static void
count_done(void *arg, const struct luapool_reply *reply)
{
	struct inflight *f = arg;
	pthread_mutex_lock(&f->lock);
	f->outstanding--;
	f->done++;
	if (reply->status != LUAPOOL_OK || reply->body_len < strlen(f->expect) ||
	    memmem(reply->body, reply->body_len, f->expect, strlen(f->expect)) == NULL)
		f->failed++;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

/* Keeps `depth` jobs in flight until `jobs` are done; returns seconds. */
static double
run_pool(struct luapool *pool, const struct workload *w, int depth, int *failed)
{
	struct inflight f = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, w->expect };
	struct luapool_job job = { .kind = LUAPOOL_JOB_EXEC, .request = w->request,
		.request_len = strlen(w->request) };
	double start = now_s();
	int submitted = 0;
	pthread_mutex_lock(&f.lock);
	while (f.done < w->jobs) {
		while (submitted < w->jobs && f.outstanding < depth) {
			f.outstanding++;
			submitted++;
			pthread_mutex_unlock(&f.lock);
			if (luapool_submit_async(pool, &job, count_done, &f, NULL) == -1) {
				pthread_mutex_lock(&f.lock);
				f.outstanding--;
				f.done++;
				f.failed++;
				continue;
			}
			pthread_mutex_lock(&f.lock);
		}
		if (f.done < w->jobs)
			pthread_cond_wait(&f.cond, &f.lock);
	}
	pthread_mutex_unlock(&f.lock);
	*failed = f.failed;
	return now_s() - start;
}

/* The whole job in this process, as a worker does it: decode the request,
 * base64, cached load, run, encode. */
static double
run_in_process(struct vm *vm, const struct workload *w, int *failed)
{
	struct vm_outcome out;
	buffer_init(&out.body, 0);
	buffer_init(&out.traceback, 0);
	double start = now_s();
	for (int i = 0; i < w->jobs; i++) {
		struct vm_request req = { .text = w->request, .len = strlen(w->request),
			.allow_bytecode = 1, .max_timeout_ms = 60000 };
		if (vm_request_load(vm, &req, &out) == 0)
			vm_run_loaded(vm, &out);
		if (out.status != LUAPOOL_OK || strstr(out.body.data, w->expect) == NULL)
			(*failed)++;
	}
	double took = now_s() - start;
	buffer_free(&out.body);
	buffer_free(&out.traceback);
	return took;
}

int
main(int argc, char **argv)
{
	unsigned workers = argc > 1 ? (unsigned)atoi(argv[1]) : 2;
	double scale = argc > 2 ? atof(argv[2]) : 1.0;
	struct workload loads[] = {
		{ "hello", "return ctx.message .. \" from Lua\"",
		  strdup("{\"message\":\"Hello\",\"params\":{\"id\":\"123\"}}"), NULL, NULL, 0,
		  "Hello from Lua", 100000 },
		{ "compute", "local s=0 for i=1,ctx.n do s=s+(i%7) end return s",
		  strdup("{\"n\":100000}"), NULL, NULL, 0, "300000", 2000 },
		{ "bigctx", "local items = ctx.items local s = 0 for i = 1, #items do "
		  "s = s + items[i].qty end return { count = #items, sum = s, first = items[1].name }",
		  make_big_context(), NULL, NULL, 0, "\"count\":500", 3000 },
	};
	struct luapool_options opts;
	struct luapool_error err;
	luapool_options_init(&opts);
	opts.workers = workers;
	struct luapool *pool = luapool_new_with(&opts, &err);
	if (pool == NULL) {
		fprintf(stderr, "luapool: %s\n", err.message);
		return 1;
	}
	struct vm_limits limits = { .memory_bytes = 128u << 20, .max_result_bytes = 1u << 20,
		.max_depth = 256, .cache_entries = 256 };
	char verr[256] = "";
	struct vm *vm = vm_new(&limits, verr, sizeof(verr));
	if (vm == NULL) {
		fprintf(stderr, "vm: %s\n", verr);
		return 1;
	}
	printf("| workload | context | path | jobs | jobs/s | µs/job |\n");
	printf("| --- | --- | --- | --- | --- | --- |\n");
	int failures = 0;
	for (size_t i = 0; i < sizeof(loads) / sizeof(loads[0]); i++) {
		struct workload *w = &loads[i];
		w->jobs = (int)(w->jobs * scale) > 10 ? (int)(w->jobs * scale) : 10;
		if (prepare(pool, w) == -1)
			return 1;
		int failed = 0;
		run_pool(pool, w, 2 * (int)workers, &failed);	/* warm caches */
		failed = 0;
		struct { const char *path; double secs; } rows[3];
		rows[0].path = "pool, 1 in flight";
		rows[0].secs = run_pool(pool, w, 1, &failed);
		rows[1].path = "pool, 2 per worker in flight";
		rows[1].secs = run_pool(pool, w, 2 * (int)workers, &failed);
		rows[2].path = "in-process VM, no worker";
		rows[2].secs = run_in_process(vm, w, &failed);
		for (int r = 0; r < 3; r++)
			printf("| %s | %zu B | %s | %d | %.0f | %.1f |\n", w->name, strlen(w->context),
			    rows[r].path, w->jobs, w->jobs / rows[r].secs, rows[r].secs * 1e6 / w->jobs);
		failures += failed;
	}
	printf("\nworkers: %u; failures: %d\n", workers, failures);
	vm_free(vm);
	luapool_free(pool);
	for (size_t i = 0; i < sizeof(loads) / sizeof(loads[0]); i++) {
		free(loads[i].context);
		free(loads[i].request);
		free(loads[i].bytecode);
	}
	return failures ? 1 : 0;
}
