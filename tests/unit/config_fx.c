/*
 * config_fx.c - the fixture of the configuration and auth_file unit tests:
 * a temporary directory per test, files written into it and loaded from
 * there (config_fx.h).
 */
#include "config_fx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fx_init(struct fx *fx)
{
	memset(fx, 0, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/pgcutover-test-XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		fx->dir[0] = '\0';
}

void fx_done(struct fx *fx)
{
	config_free(fx->cfg);
	config_errors_free(&fx->errs);
	userlist_free(fx->ul);
	free(fx->ul_err);
	for (size_t i = 0; i < fx->nfiles; i++) {
		unlink(fx->files[i]);
		free(fx->files[i]);
	}
	if (fx->dir[0])
		rmdir(fx->dir);
}

/* Writes 'text' to DIR/name and returns its path (owned by fx), NULL on failure. */
const char *fx_write(struct fx *fx, const char *name, const char *text)
{
	char *path;
	FILE *fp;

	if (fx->dir[0] == '\0' || fx->nfiles == FX_MAX_FILES)
		return NULL;
	if (asprintf(&path, "%s/%s", fx->dir, name) < 0)
		return NULL;
	for (size_t i = 0; i < fx->nfiles; i++) {
		if (strcmp(fx->files[i], path) == 0) {
			free(path);
			path = fx->files[i];
			goto write;
		}
	}
	fx->files[fx->nfiles++] = path;
write:
	fp = fopen(path, "w");
	if (fp == NULL)
		return NULL;
	fputs(text, fp);
	fclose(fp);
	fx->path = path;
	return path;
}

/* Writes DIR/pgcutover.ini and loads it; the result is fx->cfg and fx->errs. */
struct config *fx_load(struct fx *fx, const char *text)
{
	const char *path = fx_write(fx, "pgcutover.ini", text);

	config_free(fx->cfg);
	config_errors_free(&fx->errs);
	fx->cfg = path ? config_load(path, &fx->errs) : NULL;
	return fx->cfg;
}

/* Writes DIR/userlist.txt and loads it; the result is fx->ul and fx->ul_err. */
struct userlist *fx_userlist(struct fx *fx, const char *text)
{
	const char *path = fx_write(fx, "userlist.txt", text);

	userlist_free(fx->ul);
	free(fx->ul_err);
	fx->ul = NULL;
	fx->ul_err = NULL;
	if (path)
		fx->ul = userlist_load(path, &fx->ul_err);
	return fx->ul;
}

/*
 * True when some error is "PATH:LINE: ..." (LINE 0: "PATH: ...") and
 * contains 'needle'; otherwise prints every error, to explain the failure.
 */
bool fx_has_error(const struct fx *fx, int line, const char *needle)
{
	char prefix[160];

	if (line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d: ", fx->path, line);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", fx->path);
	for (size_t i = 0; i < fx->errs.count; i++) {
		const struct config_error *e = &fx->errs.items[i];

		if (e->line == line && strncmp(e->message, prefix, strlen(prefix)) == 0 &&
		    strstr(e->message, needle) != NULL)
			return true;
	}
	fprintf(stderr, "  no error at line %d containing \"%s\"; errors:\n", line, needle);
	for (size_t i = 0; i < fx->errs.count; i++)
		fprintf(stderr, "    %s\n", fx->errs.items[i].message);
	return false;
}

/* Prints the errors of a load that should have succeeded. */
void fx_print_errors(const struct fx *fx)
{
	for (size_t i = 0; i < fx->errs.count; i++)
		fprintf(stderr, "    %s\n", fx->errs.items[i].message);
}
