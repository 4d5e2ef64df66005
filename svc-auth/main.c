/*
 * main.c - svc-auth: the service skeleton runs its definition (server.c).
 */
#include "server.h"

int
main(void)
{
	return cm_service_main(&auth_service_def);
}
