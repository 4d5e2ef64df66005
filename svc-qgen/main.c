/*
 * main.c - svc-qgen: the service skeleton runs its definition (server.c).
 */
#include "server.h"

int
main(void)
{
	return cm_service_main(&qgen_service_def);
}
