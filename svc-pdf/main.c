/*
 * main.c - svc-pdf: the service skeleton runs its definition (server.c).
 */
#include "server.h"

int
main(void)
{
	return cm_service_main(&pdf_service_def);
}
