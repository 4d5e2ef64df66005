/*
 * main.c - svc-eval: the service skeleton runs its definition (server.c).
 */
#include "server.h"

int
main(void)
{
	return cm_service_main(&eval_service_def);
}
