/*
 * config_usage.c - the key table as a reader sees it: each key's option
 * spelling and value placeholder, the --help text, and the luapoold(8) and
 * luapoold.conf(5) man pages (printed by the hidden --help-man SECTION,
 * which the Makefile runs on the built binary).  Everything is printed
 * from config_keys.c's table and config_init's defaults, so --help, the
 * pages and the parser cannot drift apart.  It never parses a value nor
 * changes a configuration it did not make itself.
 */
#include <stdio.h>
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

void
config_option_name(const struct config_key *key, char *buf, size_t len)
{
	size_t i = 0;

	for (; key->name[i] != '\0' && i + 1 < len; i++)
		buf[i] = key->name[i] == '_' ? '-' : key->name[i];
	buf[i] = '\0';
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

		config_option_name(&config_keys[i], option, sizeof(option));
		printf("  --%s %s  (default: %s)\n", option,
		    metavars[config_keys[i].type], value ? value : "unset");
		print_wrapped(config_keys[i].help, 6, 79);
	}
	config_free(&defaults);
}

/* Man pages -------------------------------------------------------------- */

/* Text as roff: a backslash is written \e, a dash \- when it is part of
 * an option (keep_dashes 0), and "\&" first so that no line starts a
 * request with '.' or '\''. */
static void
roff(const char *text, int keep_dashes)
{
	fputs("\\&", stdout);
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '\\')
			fputs("\\e", stdout);
		else if (*p == '-' && !keep_dashes)
			fputs("\\-", stdout);
		else
			putchar(*p);
	}
}

/* One .TP entry per key: "--key-name N" in luapoold(8), "key_name N" in
 * luapoold.conf(5), then its help and default. */
static void
print_man_keys(int as_options)
{
	struct config defaults;
	char option[64], buf[64];

	config_init(&defaults);
	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
		const struct config_key *key = &config_keys[i];
		const char *value = config_keys_value_text(&defaults, key, buf,
		    sizeof(buf));

		config_option_name(key, option, sizeof(option));
		printf(".TP\n\\fB%s", as_options ? "\\-\\-" : "");
		roff(as_options ? option : key->name, 0);
		printf("\\fR \\fI%s\\fR\n", metavars[key->type]);
		roff(key->help, 1);
		fputs(" (default: ", stdout);
		roff(value ? value : "unset", 1);
		fputs(").\n", stdout);
	}
	config_free(&defaults);
}

static void
print_man_daemon(void)
{
	puts(".TH LUAPOOLD 8 \"\" \"luapoold " LUAPOOL_VERSION "\" "
	    "\"System Manager's Manual\"\n"
	    ".SH NAME\n"
	    "luapoold \\- run LuaJIT scripts sent over HTTP in sandboxed "
	    "worker processes\n"
	    ".SH SYNOPSIS\n"
	    ".B luapoold\n"
	    "[\\fB\\-c\\fR \\fIFILE\\fR] [\\fB\\-\\-check\\-config\\fR] "
	    "[\\fB\\-\\-\\fIKEY\\fR \\fIVALUE\\fR]...\n"
	    ".SH DESCRIPTION\n"
	    ".B luapoold\n"
	    "answers HTTP requests that carry Lua source or LuaJIT bytecode by "
	    "running them in a pool of sandboxed worker processes "
	    "(\\fBluapool\\-worker\\fR), each with a deadline and a heap limit.\n"
	    "The HTTP API is described in API.md and in openapi.yaml (OpenAPI "
	    "3.1), which make install puts in share/doc/luapoold under its "
	    "prefix.\n"
	    ".PP\n"
	    "Every key of the configuration file (\\fBluapoold.conf\\fR(5)) is "
	    "also an option, \\fB\\-\\-key\\-with\\-dashes\\fR \\fIVALUE\\fR or "
	    "\\fB\\-\\-key\\-with\\-dashes=\\fIVALUE\\fR, and the command line "
	    "wins over the file.\n"
	    ".SH OPTIONS\n"
	    ".TP\n"
	    "\\fB\\-c\\fR, \\fB\\-\\-config\\fR \\fIFILE\\fR\n"
	    "read FILE (key = value lines) first; without it no file is read.\n"
	    ".TP\n"
	    "\\fB\\-\\-check\\-config\\fR\n"
	    "check the configuration and exit.\n"
	    ".TP\n"
	    "\\fB\\-h\\fR, \\fB\\-\\-help\\fR\n"
	    "print the options with their defaults and exit.\n"
	    ".TP\n"
	    "\\fB\\-V\\fR, \\fB\\-\\-version\\fR\n"
	    "print the version and exit.");
	print_man_keys(1);
	puts(".SH SIGNALS\n"
	    ".TP\n"
	    "SIGTERM, SIGINT\n"
	    "stop accepting connections, finish the jobs under way, exit 0.\n"
	    ".TP\n"
	    "SIGHUP\n"
	    "read the configuration again and apply what can change while "
	    "running.\n"
	    ".SH FILES\n"
	    ".TP\n"
	    CONFIG_DEFAULT_FILE "\n"
	    "the configuration file of the installed service.\n"
	    ".SH SEE ALSO\n"
	    "\\fBluapoold.conf\\fR(5)");
}

static void
print_man_file(void)
{
	puts(".TH LUAPOOLD.CONF 5 \"\" \"luapoold " LUAPOOL_VERSION "\" "
	    "\"File Formats Manual\"\n"
	    ".SH NAME\n"
	    "luapoold.conf \\- configuration file of luapoold\n"
	    ".SH SYNOPSIS\n"
	    CONFIG_DEFAULT_FILE "\n"
	    ".SH DESCRIPTION\n"
	    "The file holds \\fIkey\\fR = \\fIvalue\\fR lines; '#' starts a "
	    "comment, and \"double quotes\" keep spaces or '#' in a value.\n"
	    "A key given twice is an error.\n"
	    "Every key is also a command\\-line option of "
	    "\\fBluapoold\\fR(8), with dashes for underscores, and the "
	    "command line wins.\n"
	    ".PP\n"
	    "\\fISIZE\\fR is bytes or a number with k, M or G (KiB, MiB, GiB); "
	    "\\fIBOOL\\fR is yes/no, true/false, on/off or 1/0; an empty "
	    "\\fIPATH\\fR unsets it.\n"
	    "Check a file with \\fBluapoold \\-c\\fR \\fIFILE\\fR "
	    "\\fB\\-\\-check\\-config\\fR.\n"
	    ".SH KEYS");
	print_man_keys(0);
	puts(".SH SEE ALSO\n"
	    "\\fBluapoold\\fR(8)");
}

int
config_print_man(const char *section)
{
	if (strcmp(section, "8") == 0)
		print_man_daemon();
	else if (strcmp(section, "5") == 0)
		print_man_file();
	else {
		fprintf(stderr, PROGRAM ": --help-man: no page in section "
		    "\"%s\" (5 or 8)\n", section);
		return -1;
	}
	return 0;
}
