/* A program built against an installed weightbus: it links and its library matches the header. */
#include <stdio.h>
#include <weightbus/weightbus.h>

int main(void) {
  if (wb_version() != WB_VERSION) {
    fprintf(stderr, "header %d, library %u\n", WB_VERSION, wb_version());
    return 1;
  }
  printf("consumer: libweightbus %s\n", wb_version_string());
  return 0;
}
