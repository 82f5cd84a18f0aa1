/*
 * replay_main.c - runs a fuzz target over files, without libFuzzer.
 *
 *   build/fuzz-replay/fuzz_pq tests/fuzz/fuzz_pq/seeds tests/fuzz/fuzz_pq/regressions
 *
 * Each argument is a file or a directory, whose entries are replayed in
 * name order (names starting with '.' are skipped, so a .gitkeep keeps an
 * empty regressions/ in git).  Every input is handed to
 * LLVMFuzzerTestOneInput() in a malloc'd block of exactly its size, as
 * libFuzzer does, so a sanitizer build catches overreads.  A target that
 * crashes or aborts on an input kills the process, and make sees it fail;
 * a handler for the fatal signals names the input first (-v names every
 * input as it goes).
 *
 * This is what lets `make test` (gcc, no sanitizer) and `make test-asan`
 * (clang, ASan + UBSan) replay every seed and every regression input with
 * the build's normal compiler: libFuzzer itself needs clang.
 */
#include "tests/fuzz/fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>

/* Targets that need setup define it; the others leave it NULL. */
extern int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Inputs replayed so far, for the closing line. */
static size_t replayed;

/* -v: name every input before running it. */
static bool verbose;

/* The input being run, for the fatal-signal handler. */
static const char *volatile current;

/*
 * An abort() (FUZZ_CHECK, or a sanitizer with abort_on_error=1) or a crash:
 * name the input, then die of the same signal so make sees the failure.
 * Only async-signal-safe calls here.
 */
static void on_fatal(int sig)
{
	const char *name = current;

	if (name != NULL) {
		static const char msg[] = "replay: the input that failed is ";
		ssize_t rc;

		rc = write(STDERR_FILENO, msg, sizeof(msg) - 1);
		rc = write(STDERR_FILENO, name, strlen(name));
		rc = write(STDERR_FILENO, "\n", 1);
		(void)rc;
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Reads 'path' whole and runs the target on it; false when it cannot be read. */
static bool replay_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *data = NULL;
	size_t len = 0, cap = 0;
	bool ok = true;

	if (fp == NULL) {
		fprintf(stderr, "replay: could not open \"%s\": %s\n", path, strerror(errno));
		return false;
	}
	for (;;) {
		size_t n;

		if (len == cap) {
			uint8_t *d;

			cap = cap ? cap * 2 : 4096;
			d = realloc(data, cap);
			if (d == NULL) {
				ok = false;
				break;
			}
			data = d;
		}
		n = fread(data + len, 1, cap - len, fp);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(fp))
		ok = false;
	fclose(fp);
	if (ok) {
		/* exactly 'len' bytes, like libFuzzer's own copy of the input */
		uint8_t *exact = fuzz_dup_exact(data, len);

		if (verbose)
			fprintf(stderr, "replay: %s\n", path);
		current = path;
		LLVMFuzzerTestOneInput(exact, len);
		current = NULL;
		free(exact);
		replayed++;
	} else {
		fprintf(stderr, "replay: could not read \"%s\"\n", path);
	}
	free(data);
	return ok;
}

/* Name order, so that runs are reproducible. */
static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays every regular file directly in 'dir'. */
static bool replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	bool ok = true;

	if (d == NULL) {
		fprintf(stderr, "replay: could not open directory \"%s\": %s\n", dir,
			strerror(errno));
		return false;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **nn;

			cap = cap ? cap * 2 : 64;
			nn = realloc(names, cap * sizeof(*names));
			FUZZ_CHECK(nn != NULL);
			names = nn;
		}
		FUZZ_CHECK(asprintf(&names[n], "%s/%s", dir, e->d_name) >= 0);
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode) && !replay_file(names[i]))
			ok = false;
		free(names[i]);
	}
	free(names);
	return ok;
}

int main(int argc, char **argv)
{
	bool ok = true;
	int first = 1;

	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		verbose = true;
		first = 2;
	}
	if (argc <= first) {
		fprintf(stderr, "usage: %s [-v] FILE|DIR...\n", argv[0]);
		return 2;
	}
	signal(SIGABRT, on_fatal);
	signal(SIGSEGV, on_fatal);
	signal(SIGBUS, on_fatal);
	signal(SIGFPE, on_fatal);
	signal(SIGILL, on_fatal);
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = first; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: \"%s\": %s\n", argv[i], strerror(errno));
			ok = false;
		} else if (S_ISDIR(st.st_mode)) {
			ok = replay_dir(argv[i]) && ok;
		} else {
			ok = replay_file(argv[i]) && ok;
		}
	}
	printf("%s: %zu inputs replayed%s\n", argv[0], replayed, ok ? "" : ", some unreadable");
	return ok ? 0 : 1;
}
