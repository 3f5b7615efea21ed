/* The registry of offered kernels: a small array searched whole (OFFERS_MAX entries). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "offers.h"

struct offers {
	struct {
		char text[OFFERS_TEXT_MAX];
		int64_t at;
	} offer[OFFERS_MAX];
	size_t n;
};

struct offers *offers_new(void)
{
	return t_calloc(1, sizeof(struct offers));
}

void offers_free(struct offers *o)
{
	free(o);
}

void offers_note(struct offers *o, const char *offer, int64_t now)
{
	char name[KERNEL_NAME_MAX];
	size_t k, oldest = 0, len = strcspn(offer, "@");

	/* Only kernels that are something here: made-up names take no slot from real ones. */
	if (len >= sizeof name)
		return;
	memcpy(name, offer, len);
	name[len] = '\0';
	if (!kernel_known(name))
		return;

	for (k = 0; k < o->n; k++) {
		if (!strcmp(o->offer[k].text, offer))
			break;
		if (o->offer[k].at < o->offer[oldest].at)
			oldest = k;
	}
	if (k == o->n)
		k = o->n < OFFERS_MAX ? o->n++ : oldest;
	snprintf(o->offer[k].text, sizeof o->offer[k].text, "%s", offer);
	o->offer[k].at = now;
}

int offers_has(const struct offers *o, const char *name, unsigned version)
{
	for (size_t k = 0; k < o->n; k++) {
		unsigned v;
		if (kernel_offer_is(o->offer[k].text, name, &v) && (!v || !version || v == version))
			return 1;
	}
	return 0;
}

