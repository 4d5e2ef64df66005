/*
 * openapi.h - the v1 contract as an OpenAPI 3 document, served at GET /api/v1/openapi.json.
 */
#ifndef EDGE_OPENAPI_H
#define EDGE_OPENAPI_H

extern const char edge_openapi_json[];

#endif
