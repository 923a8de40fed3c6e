/*
 * config_args.c - the command line: -c/--config, --check-config, --help,
 * --version and one long option per key (--key-with-dashes VALUE or
 * --key-with-dashes=VALUE), applied over the file whatever their order,
 * and the hidden --help-man SECTION; config_usage.c prints the texts.
 * The options are generated from config_keys.c's table, so this file must
 * never list a key by hand; nothing in the other config files calls it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luapool.h"
#include "daemon/config.h"
#include "daemon/config_internal.h"

/* The command line ------------------------------------------------------- */

enum option_kind {
	OPTION_KEY, OPTION_CONFIG, OPTION_CHECK, OPTION_HELP, OPTION_VERSION,
	OPTION_MAN
};

struct option_seen {
	enum option_kind kind;
	const struct config_key *key;		/* OPTION_KEY */
	const char *value;		/* OPTION_KEY, OPTION_CONFIG, OPTION_MAN */
};

static int
name_is(const char *name, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(name, word, len) == 0;
}

static int
unknown_option(const char *name, size_t len)
{
	const struct config_key *key = config_keys_find(name, len, '_');

	if (name_is(name, len, "help") || name_is(name, len, "version") ||
	    name_is(name, len, "check-config")) {
		fprintf(stderr, PROGRAM ": --%.*s takes no value\n", (int)len,
		    name);
	} else if (key != NULL) {
		char dashed[64];
		config_option_name(key, dashed, sizeof(dashed));
		fprintf(stderr, PROGRAM ": unknown option --%.*s (did you mean "
		    "--%s?)\n", (int)len, name, dashed);
	} else {
		fprintf(stderr, PROGRAM ": unknown option --%.*s\n", (int)len,
		    name);
	}
	return -1;
}

/* The value of the option at argv[*i]: after '=' if inline, else the next
 * argument (consumed). */
static int
option_value(int argc, char **argv, int *i, const char *inline_value,
    const char **value)
{
	if (inline_value != NULL) {
		*value = inline_value;
		return 0;
	}
	if (*i + 1 >= argc)
		return -1;
	*value = argv[++*i];
	return 0;
}

/* The option without its value: --help, --version, --check-config. */
static int
read_flag(const char *arg, struct option_seen *out)
{
	if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
		out->kind = OPTION_HELP;
	else if (strcmp(arg, "-V") == 0 || strcmp(arg, "--version") == 0)
		out->kind = OPTION_VERSION;
	else if (strcmp(arg, "--check-config") == 0)
		out->kind = OPTION_CHECK;
	else
		return 0;
	return 1;
}

/* Reads argv[*i] (and its value), advancing *i past what it used.  Prints
 * the error and returns -1 for anything it does not know. */
static int
read_option(int argc, char **argv, int *i, struct option_seen *out)
{
	const char *arg = argv[*i], *name = arg + 2, *equals = NULL;
	size_t len;

	*out = (struct option_seen){ OPTION_KEY, NULL, NULL };
	if (read_flag(arg, out))
		return 0;
	if (strcmp(arg, "-c") == 0) {
		out->kind = OPTION_CONFIG;
		name = "config";
		len = strlen(name);
	} else if (strncmp(arg, "-c", 2) == 0) {
		out->kind = OPTION_CONFIG;
		out->value = arg + 2;
		return 0;
	} else if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
		if (arg[0] == '-')
			fprintf(stderr, PROGRAM ": unknown option %s\n", arg);
		else
			fprintf(stderr, PROGRAM ": unexpected argument \"%s\"\n",
			    arg);
		return -1;
	} else {
		equals = strchr(name, '=');
		len = equals ? (size_t)(equals - name) : strlen(name);
		if (name_is(name, len, "config"))
			out->kind = OPTION_CONFIG;
		else if (name_is(name, len, "help-man"))
			out->kind = OPTION_MAN;	/* for the Makefile */
		else if ((out->key = config_keys_find(name, len, '-')) == NULL)
			return unknown_option(name, len);
	}
	if (option_value(argc, argv, i, equals ? equals + 1 : NULL,
	    &out->value) == -1) {
		fprintf(stderr, PROGRAM ": --%.*s: missing value\n", (int)len,
		    name);
		return -1;
	}
	return 0;
}

static const char *
base_name(const char *path)
{
	const char *slash;

	if (path == NULL || path[0] == '\0')
		return PROGRAM;
	slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* First walk: checks every option's spelling, handles --help/--version and
 * finds the file.  Returns 1 to stop, 0 to go on, -1 on error. */
static int
scan_options(int argc, char **argv, const char **file, int *check_only)
{
	struct option_seen option;

	for (int i = 1; i < argc; i++) {
		if (read_option(argc, argv, &i, &option) == -1)
			return -1;
		switch (option.kind) {
		case OPTION_HELP:
			config_print_usage(base_name(argv[0]));
			return 1;
		case OPTION_VERSION:
			printf(PROGRAM " %s\n", LUAPOOL_VERSION);
			return 1;
		case OPTION_MAN:
			return config_print_man(option.value) == 0 ? 1 : -1;
		case OPTION_CONFIG:
			*file = option.value;
			break;
		case OPTION_CHECK:
			*check_only = 1;
			break;
		case OPTION_KEY:
			break;
		}
	}
	return 0;
}

/* Second walk, after the file: every key option, in order. */
static int
apply_options(struct config *cfg, int argc, char **argv)
{
	struct option_seen option;
	char why[512], dashed[64];

	for (int i = 1; i < argc; i++) {
		if (read_option(argc, argv, &i, &option) == -1)
			return -1;
		if (option.kind != OPTION_KEY)
			continue;
		if (config_keys_set(cfg, option.key, option.value, why,
		    sizeof(why)) == -1) {
			config_option_name(option.key, dashed, sizeof(dashed));
			fprintf(stderr, PROGRAM ": --%s: %s\n", dashed, why);
			return -1;
		}
	}
	return 0;
}

int
config_from_args(struct config *cfg, int argc, char **argv)
{
	const char *file = NULL;
	char why[64];
	int check_only = 0, rc;

	if ((rc = scan_options(argc, argv, &file, &check_only)) != 0)
		return rc;
	if (file != NULL) {
		if (config_keys_set_string(&cfg->config_file, file, why,
		    sizeof(why)) == -1) {
			fprintf(stderr, PROGRAM ": %s\n", why);
			return -1;
		}
		if (config_load_file(cfg, file) == -1)
			return -1;
	}
	if (apply_options(cfg, argc, argv) == -1)
		return -1;
	if (check_only)
		cfg->check_only = 1;
	return 0;
}
