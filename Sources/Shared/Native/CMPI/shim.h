// Open MPI defines its handles and constants as C macros that cast addresses of
// library globals (e.g. MPI_COMM_WORLD is ((MPI_Comm)&ompi_mpi_comm_world)).
// Swift cannot import such macros, so they are re-exported as inline functions.
#ifndef SER_CMPI_SHIM_H
#define SER_CMPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm ser_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm ser_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype ser_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype ser_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype ser_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype ser_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype ser_mpi_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Datatype ser_mpi_int32(void) { return MPI_INT32_T; }
static inline MPI_Op ser_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op ser_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op ser_mpi_min(void) { return MPI_MIN; }
static inline MPI_Request ser_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *ser_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Status *ser_mpi_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
static inline void *ser_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int ser_mpi_any_source(void) { return MPI_ANY_SOURCE; }
static inline int ser_mpi_any_tag(void) { return MPI_ANY_TAG; }
static inline int ser_mpi_success(void) { return MPI_SUCCESS; }
static inline int ser_mpi_max_processor_name(void) { return MPI_MAX_PROCESSOR_NAME; }
static inline int ser_mpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int ser_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline MPI_Info ser_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline int ser_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline int ser_mpi_status_source(const MPI_Status *s) { return s->MPI_SOURCE; }
static inline int ser_mpi_status_tag(const MPI_Status *s) { return s->MPI_TAG; }
#endif
