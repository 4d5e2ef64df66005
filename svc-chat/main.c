/*
 * main.c - svc-chat: the service skeleton runs its definition (server.c).
 */
#include "server.h"

int
main(void)
{
	return cm_service_main(&chat_service_def);
}
