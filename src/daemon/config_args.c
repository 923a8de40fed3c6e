/*
 * config_args.c - the command line: -c/--config, --check-config, --help,
 * --version and one long option per key (--key-with-dashes VALUE or
 * --key-with-dashes=VALUE), applied over the file whatever their order;
 * and the --help text, whose defaults are read from config_init itself.
 * The options are generated from config_keys.c's table, so this file must
 * never list a key by hand; nothing in the other config files calls it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luapool.h"
#include "daemon/config.h"
#include "daemon/config_internal.h"

static const char *const metavars[] = {
	[TYPE_UNSIGNED] = "N",
	[TYPE_SIZE] = "SIZE",
	[TYPE_BOOL] = "BOOL",
	[TYPE_PATH] = "PATH",
	[TYPE_LISTEN] = "ADDRESS",
	[TYPE_LOG_LEVEL] = "LEVEL",
	[TYPE_BYTECODE] = "MODE",
	[TYPE_NAME] = "NAME",
	[TYPE_LOG_FORMAT] = "FORMAT"
};

static void
option_name(const struct config_key *key, char *buf, size_t len)
{
	size_t i = 0;

	for (; key->name[i] != '\0' && i + 1 < len; i++)
		buf[i] = key->name[i] == '_' ? '-' : key->name[i];
	buf[i] = '\0';
}

/* The command line ------------------------------------------------------- */

enum option_kind {
	OPTION_KEY, OPTION_CONFIG, OPTION_CHECK, OPTION_HELP, OPTION_VERSION
};

struct option_seen {
	enum option_kind kind;
	const struct config_key *key;		/* OPTION_KEY */
	const char *value;		/* OPTION_KEY, OPTION_CONFIG */
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
		option_name(key, dashed, sizeof(dashed));
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
			option_name(option.key, dashed, sizeof(dashed));
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

/* --help ----------------------------------------------------------------- */

/* Prints text indented, broken at spaces so lines stay within width. */
static void
print_wrapped(const char *text, int indent, int width)
{
	while (*text != '\0') {
		int room = width - indent, len = (int)strlen(text), cut = len;

		if (len > room) {
			for (cut = room; cut > 0 && text[cut] != ' '; cut--)
				;
			if (cut == 0)
				cut = len;
		}
		printf("%*s%.*s\n", indent, "", cut, text);
		text += cut;
		while (*text == ' ')
			text++;
	}
}

void
config_print_usage(const char *program)
{
	struct config defaults;
	char option[64], buf[64];

	config_init(&defaults);
	printf("usage: %s [-c FILE] [--check-config] [--KEY VALUE]...\n\n",
	    program ? program : PROGRAM);
	fputs("Runs LuaJIT scripts sent over HTTP in a pool of sandboxed "
	    "worker processes.\n\n"
	    "  -c, --config FILE   read FILE (key = value lines) first; "
	    "without it no file\n"
	    "                      is read (the usual one is "
	    CONFIG_DEFAULT_FILE ")\n"
	    "  --check-config      check the configuration and exit\n"
	    "  -h, --help          print this help and exit\n"
	    "  -V, --version       print the version and exit\n\n"
	    "Every key of the file is also an option, --key-with-dashes VALUE "
	    "or\n--key-with-dashes=VALUE, and the command line wins over the "
	    "file.  SIZE is\nbytes or a number with k, M or G (KiB, MiB, GiB); "
	    "BOOL is yes/no, true/false,\non/off or 1/0; an empty PATH unsets "
	    "it.\n\n", stdout);
	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
		const char *value = config_keys_value_text(&defaults,
		    &config_keys[i], buf, sizeof(buf));

		option_name(&config_keys[i], option, sizeof(option));
		printf("  --%s %s  (default: %s)\n", option,
		    metavars[config_keys[i].type], value ? value : "unset");
		print_wrapped(config_keys[i].help, 6, 79);
	}
	config_free(&defaults);
}
