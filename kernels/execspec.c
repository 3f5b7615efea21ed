/* Reading kernel exec's params. */
#include <stdio.h>
#include <string.h>
#include "execspec.h"
#include "kernel.h"

enum tally_err exec_spec_parse(const json_t *params, struct exec_spec *out,
			       enum kernel_params_fault *fault, char *err, size_t errlen)
{
	const char *key;
	const json_t *v, *argv;
	size_t used = 0, i;

	memset(out, 0, sizeof *out);
	if (fault)
		*fault = KERNEL_PARAMS_INVALID;
	out->timeout_s = EXEC_TIMEOUT_DEFAULT_S;
	if (!json_is_object(params)) {
		snprintf(err, errlen, "params: kernel exec needs {\"argv\": [program, args...]}");
		return TALLY_EINVAL;
	}
	json_object_foreach((json_t *)params, key, v) {
		if (strcmp(key, "argv") && strcmp(key, "timeout_s") && strcmp(key, "resident")) {
			snprintf(err, errlen, "params.%.64s: unknown (kernel exec takes argv, "
					      "timeout_s and resident)", key);
			if (fault)
				*fault = KERNEL_PARAMS_UNKNOWN;
			return TALLY_EINVAL;
		}
	}
	argv = json_object_get(params, "argv");
	if (!argv) {
		snprintf(err, errlen, "params.argv: required (the program and its arguments)");
		return TALLY_EINVAL;
	}
	if (!json_is_array(argv) || !json_array_size(argv) ||
	    json_array_size(argv) > EXEC_ARGS_MAX) {
		snprintf(err, errlen, "params.argv: must be an array of 1 to %d strings",
			 EXEC_ARGS_MAX);
		return TALLY_EINVAL;
	}
	json_array_foreach(argv, i, v) {
		size_t len = json_is_string(v) ? json_string_length(v) : 0;
		if (!json_is_string(v) || strlen(json_string_value(v)) != len || (i == 0 && !len)) {
			snprintf(err, errlen, "params.argv[%zu]: must be a string without NUL%s", i,
				 i == 0 ? ", not empty" : "");
			return TALLY_EINVAL;
		}
		if (used + len + 1 > sizeof out->buf) {
			snprintf(err, errlen, "params.argv: longer than %zu bytes in all",
				 sizeof out->buf - 1);
			return TALLY_EINVAL;
		}
		memcpy(out->buf + used, json_string_value(v), len + 1);
		out->argv[out->argc++] = out->buf + used;
		used += len + 1;
	}
	v = json_object_get(params, "timeout_s");
	if (v) {
		double t = json_is_number(v) ? json_number_value(v) : -1.0;
		if (!(t > 0.0 && t <= EXEC_TIMEOUT_MAX_S)) {
			snprintf(err, errlen, "params.timeout_s: must be a number of seconds, more "
					      "than 0 and at most %.0f", EXEC_TIMEOUT_MAX_S);
			return TALLY_EINVAL;
		}
		out->timeout_s = t;
	}
	v = json_object_get(params, "resident");
	if (v && !json_is_boolean(v)) {
		snprintf(err, errlen, "params.resident: must be true or false (true: the program is "
				      "started once per worker thread and fed a line per batch)");
		return TALLY_EINVAL;
	}
	out->resident = json_is_true(v);
	return TALLY_OK;
}

/* exec runs programs: the worker does that (worker/exec.c), since running is I/O and kernels
 * are pure. Here it is a name, a version, open keys and a check of its params. */
const struct kernel kernel_exec = {
	.name = "exec",
	.version = 1,
	.open = 1,
	.params = 1,
};
