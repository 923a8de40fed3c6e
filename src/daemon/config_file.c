/*
 * config_file.c - the configuration file: `key = value` lines, '#'
 * comments, "quoted" values, each key at most once, errors reported as
 * "path:line: message"; and config_print, which writes a struct config back
 * in the same format.  What a value means is config_keys.c's business; this
 * file must never know a key by name, and never call config.c or
 * config_args.c (config_args.c calls it).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/config_internal.h"

static char *
skip_space(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

static void
trim_right(char *s)
{
	size_t len = strlen(s);

	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
}

static int
is_key_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-';
}

/*
 * Cuts the value out of the text after '=': either "quoted" (kept as is,
 * no escapes) or bare, where '#' at its start or after whitespace begins a
 * comment and surrounding whitespace is dropped.
 */
static int
split_value(char *text, char **value, char *err, size_t errlen)
{
	char *v = skip_space(text), *close, *rest;

	if (*v == '"') {
		close = strchr(v + 1, '"');
		if (close == NULL)
			return config_keys_fail(err, errlen,
			    "missing closing '\"'");
		rest = skip_space(close + 1);
		if (*rest != '\0' && *rest != '#')
			return config_keys_fail(err, errlen,
			    "text after the closing '\"'");
		*close = '\0';
		*value = v + 1;
		return 0;
	}
	for (char *p = v; *p != '\0'; p++) {
		if (*p == '#' && (p == v || isspace((unsigned char)p[-1]))) {
			*p = '\0';
			break;
		}
	}
	trim_right(v);
	*value = v;
	return 0;
}

static int
unknown_key(const char *name, char *err, size_t errlen)
{
	const struct config_key *key = config_keys_find(name, strlen(name),
	    '-');

	if (key != NULL)
		return config_keys_fail(err, errlen,
		    "unknown key \"%s\" (keys use '_': "
		    "\"%s\")", name, key->name);
	return config_keys_fail(err, errlen, "unknown key \"%s\"", name);
}

/*
 * Applies one line.  first_line[i] remembers where config_keys[i] was set, so
 * that a second setting is an error rather than a silent override.
 */
static int
parse_line(struct config *cfg, char *line, unsigned long lineno,
    unsigned long *first_line, char *err, size_t errlen)
{
	char *name = skip_space(line), *end = name, *after, *value = NULL;
	char why[512];
	const struct config_key *key;

	if (*name == '\0' || *name == '#')
		return 0;
	while (is_key_char(*end))
		end++;
	if (end == name)
		return config_keys_fail(err, errlen,
		    "expected \"key = value\"");
	after = skip_space(end);
	if (*after != '=')
		return config_keys_fail(err, errlen,
		    "missing '=' after \"%.*s\"",
		    (int)(end - name), name);
	*end = '\0';
	if (split_value(after + 1, &value, err, errlen) == -1)
		return -1;
	if ((key = config_keys_find(name, strlen(name), '_')) == NULL)
		return unknown_key(name, err, errlen);
	if (first_line[key - config_keys] != 0)
		return config_keys_fail(err, errlen,
		    "duplicate key \"%s\" (first set on line "
		    "%lu)", name, first_line[key - config_keys]);
	/* Two spellings of one setting would make the order matter. */
	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
		if (first_line[i] != 0 && config_keys_owner(&config_keys[i]) ==
		    config_keys_owner(key))
			return config_keys_fail(err, errlen,
			    "\"%s\" and \"%s\" (line %lu) set the same "
			    "thing: give one", name, config_keys[i].name,
			    first_line[i]);
	}
	first_line[key - config_keys] = lineno;
	if (config_keys_set(cfg, key, value, why, sizeof(why)) == -1)
		return config_keys_fail(err, errlen, "%s: %s", key->name, why);
	return 0;
}

int
config_load_file(struct config *cfg, const char *path)
{
	unsigned long first_line[CONFIG_KEY_COUNT] = { 0 };
	unsigned long lineno = 0;
	char *line = NULL, err[1024];
	size_t cap = 0;
	int rc = -1;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	while (getline(&line, &cap, f) != -1) {
		lineno++;
		if (parse_line(cfg, line, lineno, first_line, err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "%s:%lu: %s\n", path, lineno, err);
			goto fail;
		}
	}
	if (ferror(f)) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		goto fail;
	}
	rc = 0;
fail:
	free(line);
	fclose(f);
	return rc;
}

static int
needs_quotes(const char *value)
{
	size_t len = strlen(value);

	if (len == 0 || isspace((unsigned char)value[0]) || value[0] == '"' ||
	    isspace((unsigned char)value[len - 1]))
		return 1;
	for (size_t i = 1; i < len; i++) {
		if (value[i] == '#' && isspace((unsigned char)value[i - 1]))
			return 1;
	}
	return value[0] == '#';
}

void
config_print(const struct config *cfg, FILE *out)
{
	char buf[64];

	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
		const char *value = config_keys_value_text(cfg, &config_keys[i],
		    buf, sizeof(buf));

		if (config_keys[i].alias)
			continue;
		if (value == NULL)
			fprintf(out, "# %s =\n", config_keys[i].name);
		else if (needs_quotes(value))
			fprintf(out, "%s = \"%s\"\n", config_keys[i].name,
			    value);
		else
			fprintf(out, "%s = %s\n", config_keys[i].name, value);
	}
}
