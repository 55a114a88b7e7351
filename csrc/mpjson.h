/* mpjson.h - converts between msgpack objects (the RPC wire) and cJSON values
 * (the form records take everywhere inside shelfd), and reads fields of those
 * values. Every cJSON value returned is the caller's to cJSON_Delete; a
 * string returned from a value belongs to that value. */
#ifndef SHELF_MPJSON_H
#define SHELF_MPJSON_H

#include <cjson/cJSON.h>
#include <msgpack.h>

#define MPJSON_MAX_DEPTH 16

/* Convert `obj` into a new cJSON value (the caller owns it). On bad input
 * (map key not a string, NUL inside a string, ext type, nesting deeper than
 * MPJSON_MAX_DEPTH) returns NULL and points *err at a static message. */
cJSON *mpjson_from_msgpack(const msgpack_object *obj, const char **err);

/* Pack a cJSON value. Integral numbers go out as integers. */
void mpjson_pack(msgpack_packer *pk, const cJSON *v);

/* Pack a NUL-terminated string (NULL packs nil). */
void mpjson_pack_str(msgpack_packer *pk, const char *s);

/* The string member `name` of object o, or NULL if o is no object, has no
 * such member, or it is not a string. Points into o: valid while o is. */
const char *mpjson_get_str(const cJSON *o, const char *name);

#endif
